"""A bulk worklist load and the live PAM-FR listener share the default SQLite store: the load commits in
short batches, so every PAM message is ACKed AA within seconds while the load goes on; a load stopped
half-way says what it committed, and loading the file again finishes it."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, create_engine, func, select

from ris.hl7v2 import mllp
from ris.identity.intake import IntakePolicy, PamIntake
from ris.store import db
from ris.store.models import Patient
from ris.worklist import loader as worklist
from tests.cli_process import RIS, isolated_env
from tests.conftest import ROOT, add_user
from tests.reliability.pam_messages import msa, pam
from tests.worklist.generated import big_worklist

FEED = 25  # PAM messages sent while the load runs
CASES = 600  # 1 802 worklist records


def patients(url: str, prefix: str) -> int:
    with Session(db.get_engine(url)) as s:
        return s.exec(select(func.count()).select_from(Patient).where(Patient.ipp.startswith(prefix))).one()


def start_load(tmp_path: Path, url: str, cases: int) -> subprocess.Popen[str]:
    path = tmp_path / "worklist.json"
    path.write_text(json.dumps(big_worklist(cases)), encoding="utf-8")
    add_user(url, "worklist", "secretary")  # the scheduled job's user: worklist.load
    env = isolated_env(tmp_path, RIS_DATABASE_URL=url, RIS_DECLARED_ACTORS="allowed")
    return subprocess.Popen(
        [*RIS, "worklist", "load", str(path), "--by", "worklist"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_pam_messages_are_acked_within_seconds_while_a_large_worklist_loads(
    db_url: str, tmp_path: Path
) -> None:
    loader = start_load(tmp_path, db_url, CASES)
    latencies: list[float] = []
    beside = 0  # ACKs received while the loader was still at work
    try:
        async with PamIntake(IntakePolicy(frozenset({"GAM"})), database_url=db_url).listener() as server:
            await until(lambda: patients(db_url, "W") > 0)
            for n in range(FEED):
                sent = time.monotonic()
                answer = await mllp.exchange("127.0.0.1", server.port, pam(n), timeout=10)
                latencies.append(time.monotonic() - sent)
                assert msa(answer)[1] == "AA", answer
                beside += loader.poll() is None
                await asyncio.sleep(0.05)
        out, errors = loader.communicate(timeout=300)
    finally:
        loader.kill()
    assert beside >= FEED // 2, "the feed must run beside the load: make the worklist larger"
    assert loader.returncode == 0, errors
    assert f"loaded: 2 correspondents, {CASES} patients, {CASES} exams, {CASES} reports" in out
    assert max(latencies) < 5.0, sorted(latencies)[-5:]  # the lock timeout alone is 10 s
    assert patients(db_url, "R") == FEED and patients(db_url, "W") == CASES


def test_a_load_stopped_by_a_locked_database_reports_what_it_committed(db_url: str) -> None:
    data = big_worklist(80)
    # As the engine's own units of work (write lock taken at BEGIN), with a busy timeout that gives up fast.
    engine = create_engine(db_url, connect_args={"timeout": 0.1})
    sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))

    def hold_the_lock() -> None:  # a writer that keeps the lock longer than the loader waits
        while patients(db_url, "W") < 30:
            time.sleep(0.01)
        with sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=10) as other:
            other.execute("BEGIN IMMEDIATE")
            time.sleep(1.0)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    with Session(engine, expire_on_commit=False) as session:
        result = worklist.load(session, data, commit=True)
    holder.join()
    engine.dispose()
    assert result.stopped is not None and result.stopped.endswith(": database is locked"), result.stopped
    committed = result.stored["patients"]
    assert 30 <= len(committed) < 80 and committed == list(range(len(committed)))
    with Session(db.get_engine(db_url)) as s:
        stored = sorted(s.exec(select(Patient.ipp).where(Patient.ipp.startswith("W"))).all())
    assert stored == [data["patients"][i]["ipp"] for i in committed]  # exactly what it said

    with Session(db.get_engine(db_url)) as session:
        again = worklist.load(session, data, commit=True)
    assert again.ok
    assert again.unchanged["patients"] == len(committed)
    assert again.loaded["patients"] == 80 - len(committed) and patients(db_url, "W") == 80


@pytest.mark.slow  # the CLI as a process
def test_ctrl_c_during_a_load_says_in_one_line_what_was_committed(db_url: str, tmp_path: Path) -> None:
    loader = start_load(tmp_path, db_url, 3000)
    try:
        deadline = time.monotonic() + 60
        while patients(db_url, "W") < 20 and loader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        loader.send_signal(signal.SIGINT)
        out, errors = loader.communicate(timeout=60)
    finally:
        loader.kill()
    assert loader.returncode == 1, errors
    [line] = errors.splitlines()
    assert line.startswith("error: the load stopped at patients[") and ": interrupted; committed: " in line
    assert "load the same file again to finish" in line and "Traceback" not in errors
    count = patients(db_url, "W")
    assert f"correspondents[0-1], patients[0-{count - 1}]" in line
    assert f"loaded: 2 correspondents, {count} patients, 0 exams" in out
