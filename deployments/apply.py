"""Apply the deployments of prefect.yaml to a work pool through the Prefect API (what `prefect deploy`
does, without a subprocess): `ris up` calls it at each start, so the single box always serves the
definitions of the engine it runs."""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect.flows import Flow
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from deployments import specs
from deployments.entrypoints import load_flow
from deployments.worker import RisWorker


def _schedules(spec: dict[str, Any]) -> list:
    return [Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules") or []]


async def ensure_work_pool(name: str) -> None:
    """The pool of the engine's workers (type `ris`), created if absent (a worker would create it too)."""
    pool = WorkPoolCreate(
        name=name, type=RisWorker.type, base_job_template=RisWorker.get_default_base_job_template()
    )
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):
            await client.create_work_pool(pool)


async def apply_deployments(work_pool: str) -> list[UUID]:
    """Create or update every deployment of prefect.yaml on `work_pool` (created if absent); returns
    their ids."""
    await ensure_work_pool(work_pool)
    ids = []
    for spec in specs():
        flow: Flow = load_flow(spec["entrypoint"])
        deployment = await flow.ato_deployment(
            name=spec["name"],
            description=spec.get("description"),
            tags=spec.get("tags"),
            concurrency_limit=spec.get("concurrency_limit"),
            parameters=spec.get("parameters") or {},
            schedules=_schedules(spec),
            work_pool_name=work_pool,
            work_queue_name=spec["work_pool"].get("work_queue_name"),
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        # Prefect would derive a file path relative to this process's directory: store prefect.yaml's
        # module path instead, as `prefect deploy` does, whatever directory `ris up` was started from.
        deployment.entrypoint = spec["entrypoint"]
        ids.append(await deployment.apply())
    return ids
