"""Worker leases and run claims in the engine's database: one live claim per report version, taken over
only from a worker that stopped or went silent, and a race for a version has exactly one winner."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa
from sqlmodel import Session

from ris.store import claims
from ris.store.db import session_scope
from ris.store.models import EngineWorker, RunClaim


def _worker(session: Session, worker_id: str) -> str:
    claims.register_worker(session, worker_id, f"worker-{worker_id}", "host-a", 4242)
    session.commit()
    return worker_id


def _expire(session: Session, worker_id: str) -> None:
    """As if the worker had been silent for longer than its lease (killed, machine lost)."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    session.execute(sa.update(EngineWorker).where(EngineWorker.id == worker_id).values(lease_until=past))
    session.commit()


def test_subject_is_the_report_version_or_else_the_flow():
    assert claims.subject_for({"report_id": "CR-1", "version": 2}, "report-lifecycle") == "report:CR-1:v2"
    assert claims.subject_for({}, "identity-feed") == "flow:identity-feed"


def test_a_live_claim_keeps_the_version_from_another_run(session: Session):
    a, b = _worker(session, "a"), _worker(session, "b")
    assert claims.acquire(session, "report:CR-1:v1", a, "run-1") is None
    held = claims.acquire(session, "report:CR-1:v1", b, "run-2")
    assert held is not None and held.flow_run_id == "run-1" and held.worker_name == "worker-a"
    assert "flow run run-1 on worker 'worker-a' (host-a)" in held.describe()
    assert claims.acquire(session, "report:CR-2:v1", b, "run-3") is None  # other versions are free


def test_the_same_run_may_claim_again_and_a_release_frees_the_version(session: Session):
    a, b = _worker(session, "a"), _worker(session, "b")
    assert claims.acquire(session, "report:CR-1:v1", a, "run-1") is None
    assert claims.acquire(session, "report:CR-1:v1", a, "run-1") is None  # an interrupted attempt
    claims.release(session, "report:CR-1:v1", b, "run-1")  # not b's claim: nothing happens
    assert claims.holder(session, "report:CR-1:v1") is not None
    claims.release(session, "report:CR-1:v1", a, "run-1")
    assert claims.holder(session, "report:CR-1:v1") is None
    assert claims.acquire(session, "report:CR-1:v1", b, "run-2") is None


def test_the_claim_of_a_silent_or_stopped_worker_is_taken_over(session: Session):
    a, b, c = _worker(session, "a"), _worker(session, "b"), _worker(session, "c")
    assert claims.acquire(session, "report:CR-1:v1", a, "run-1") is None
    assert claims.acquire(session, "report:CR-2:v1", b, "run-2") is None
    _expire(session, a)
    claims.stop_worker(session, b)
    assert claims.acquire(session, "report:CR-1:v1", c, "run-1", purpose="recovery") is None
    assert claims.acquire(session, "report:CR-2:v1", c, "run-3") is None
    assert session.get(RunClaim, "report:CR-1:v1").purpose == "recovery"
    assert claims.renew_lease(session, a)  # a silent worker that comes back renews...
    assert not claims.renew_lease(session, b)  # ...a stopped one does not
    assert claims.holder(session, "report:CR-1:v1").worker_name == "worker-c"  # and gets nothing back


def test_two_workers_racing_for_a_version_never_both_win(db_url: str):
    with session_scope() as session:
        for worker_id in ("a", "b", "c", "d"):
            claims.register_worker(session, worker_id, worker_id, "host", 1)
    results: dict[str, object] = {}
    start = threading.Barrier(4)

    def race(worker_id: str) -> None:
        start.wait()
        with session_scope() as session:
            results[worker_id] = claims.acquire(session, "report:CR-9:v1", worker_id, f"run-{worker_id}")

    threads = [threading.Thread(target=race, args=(w,)) for w in ("a", "b", "c", "d")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [w for w, held in results.items() if held is None]
    assert len(winners) == 1
    assert all(held.flow_run_id == f"run-{winners[0]}" for held in results.values() if held is not None)
