"""Worker leases and run claims: the engine's own guarantee that two workers never run the same report
version at once, and that the runs of a worker that died are resumed by another.

A worker renews its lease while it lives. Before running a flow, it claims the flow's subject (the
report version). A claim stays live while its worker's lease does; a claim whose worker stopped or went
silent past its lease can be taken over. Every step is one conditional statement, so two workers that
race for the same subject cannot both win, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from ris.store.models import EngineWorker, RunClaim, utcnow

DEFAULT_LEASE_S = 30.0


def lease() -> dt.timedelta:
    """How long a silent worker keeps its claims (RIS_WORKER_LEASE_SECONDS, 30 s by default): longer
    tolerates longer pauses, shorter resumes the runs of a dead worker sooner."""
    return dt.timedelta(seconds=float(os.environ.get("RIS_WORKER_LEASE_SECONDS") or DEFAULT_LEASE_S))


def subject_for(parameters: Mapping[str, Any], flow_name: str) -> str:
    """What a flow run works on: its report version when it has one (every per-report flow takes
    `report_id` and `version`), otherwise the flow itself, which then runs one at a time."""
    if "report_id" in parameters and "version" in parameters:
        return f"report:{parameters['report_id']}:v{parameters['version']}"
    return f"flow:{flow_name}"


@dataclass(frozen=True)
class Holder:
    """The live claim that keeps a subject from another run."""

    worker_name: str
    host: str
    flow_run_id: str
    purpose: str
    since: dt.datetime

    def describe(self) -> str:
        where = f"worker {self.worker_name!r} ({self.host})"
        return f"flow run {self.flow_run_id} on {where} since {self.since:%H:%M:%S} UTC"


def register_worker(session: Session, worker_id: str, name: str, host: str, pid: int) -> None:
    now = utcnow()
    session.add(
        EngineWorker(
            id=worker_id, name=name[:128], host=host[:128], pid=pid, started_at=now, lease_until=now + lease()
        )
    )


def renew_lease(session: Session, worker_id: str) -> bool:
    """Extend this worker's lease; False when the worker is no longer known as running."""
    stmt = (
        sa.update(EngineWorker)
        .where(EngineWorker.id == worker_id, EngineWorker.stopped_at.is_(None))
        .values(lease_until=utcnow() + lease())
    )
    return session.execute(stmt).rowcount == 1


def stop_worker(session: Session, worker_id: str) -> None:
    """A clean stop: the worker's claims become free at once instead of when its lease runs out."""
    session.execute(sa.update(EngineWorker).where(EngineWorker.id == worker_id).values(stopped_at=utcnow()))


def _alive(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(EngineWorker.lease_until > now, EngineWorker.stopped_at.is_(None))


def _held_by_live_worker(now: dt.datetime) -> sa.ColumnElement[bool]:
    alive = select(EngineWorker.id).where(EngineWorker.id == RunClaim.worker_id, _alive(now))
    return alive.correlate(RunClaim).exists()


def _insert_if_absent(session: Session, values: dict[str, Any]) -> bool:
    dialect = session.get_bind().dialect.name
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
    stmt = insert(RunClaim).values(**values).on_conflict_do_nothing(index_elements=["subject"])
    return session.execute(stmt).rowcount == 1


def acquire(
    session: Session, subject: str, worker_id: str, flow_run_id: str, *, purpose: str = "run"
) -> Holder | None:
    """Claim `subject` for `flow_run_id` on this worker. None when claimed; otherwise the live holder.

    Free means: never claimed, released, or held by a worker that stopped or whose lease ran out. The
    same flow run on the same worker may claim again (a claim left by an interrupted attempt)."""
    for _ in range(3):  # a claim released between our attempt and our look gets a second chance
        now = utcnow()
        values = {
            "subject": subject,
            "worker_id": worker_id,
            "flow_run_id": flow_run_id,
            "purpose": purpose,
            "claimed_at": now,
            "released_at": None,
        }
        if _insert_if_absent(session, values):
            return None
        free = sa.or_(
            RunClaim.released_at.is_not(None),
            ~_held_by_live_worker(now),
            sa.and_(RunClaim.worker_id == worker_id, RunClaim.flow_run_id == flow_run_id),
        )
        update = sa.update(RunClaim).where(RunClaim.subject == subject, free).values(**values)
        if session.execute(update).rowcount == 1:
            return None
        kept_by = holder(session, subject)
        if kept_by is not None:
            return kept_by
    raise RuntimeError(f"{subject}: the claim changed hands three times while being taken")


def holder(session: Session, subject: str) -> Holder | None:
    """The live claim on `subject`, if any."""
    row = session.exec(
        select(RunClaim, EngineWorker)
        .join(EngineWorker, EngineWorker.id == RunClaim.worker_id)
        .where(RunClaim.subject == subject, RunClaim.released_at.is_(None), _alive(utcnow()))
    ).first()
    if row is None:
        return None
    claim, worker = row
    return Holder(worker.name, worker.host, claim.flow_run_id, claim.purpose, claim.claimed_at)


def release(session: Session, subject: str, worker_id: str, flow_run_id: str) -> None:
    """End this worker's claim for this run (a claim taken over meanwhile is left alone)."""
    session.execute(
        sa.update(RunClaim)
        .where(
            RunClaim.subject == subject,
            RunClaim.worker_id == worker_id,
            RunClaim.flow_run_id == flow_run_id,
            RunClaim.released_at.is_(None),
        )
        .values(released_at=utcnow())
    )
