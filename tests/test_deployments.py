"""The deployment definitions point at flows that exist, under the names the CLI starts runs with."""

from __future__ import annotations

import importlib

import yaml

from deployments import (
    IDENTITY_FEED_DEPLOYMENT,
    IDENTITY_FEED_FLOW,
    LIFECYCLE_DEPLOYMENT,
    LIFECYCLE_FLOW,
    RETRY_DEPLOYMENT,
    RETRY_FLOW,
)
from tests.conftest import ROOT


def test_prefect_yaml_entrypoints_are_the_engine_flows():
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    flows = {}
    for deployment in spec["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flows[getattr(module, name).name] = deployment
        assert deployment["work_pool"]["name"] == "ris"
    assert set(flows) == {LIFECYCLE_FLOW, RETRY_FLOW, IDENTITY_FEED_FLOW}
    assert flows[IDENTITY_FEED_FLOW]["concurrency_limit"] == 1


async def test_the_single_box_registers_every_flow(prefect_server):
    from prefect.client.orchestration import get_client

    from deployments.serve import single_box_runner

    await single_box_runner()
    async with get_client() as client:
        deployments = await client.read_deployments()
        flows = {(await client.read_flow(d.flow_id)).name: d for d in deployments}
    for flow, deployment in [
        (LIFECYCLE_FLOW, LIFECYCLE_DEPLOYMENT),
        (RETRY_FLOW, RETRY_DEPLOYMENT),
        (IDENTITY_FEED_FLOW, IDENTITY_FEED_DEPLOYMENT),
    ]:
        assert flows[flow].name == deployment.split("/")[1]
    feed = flows[IDENTITY_FEED_FLOW]
    assert feed.schedules and feed.schedules[0].schedule.interval.total_seconds() == 60
