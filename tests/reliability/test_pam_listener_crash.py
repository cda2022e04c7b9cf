"""kill -9 of `ris identity listen` in the middle of a burst: nothing ACKed is lost, nothing is applied
twice, and the resend of everything is accepted (the engine's own crash is never the sender's problem)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ris.store import db
from ris.store.models import InboundMessage, Patient
from tests.cli_process import RIS, isolated_env, run_ris
from tests.conftest import ROOT
from tests.reliability.pam_messages import pam, send_many

BURST = 200


def start_listener(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [*RIS, "identity", "listen", "--port", "0", "--own-domain", "GAM"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()  # "PAM listener on 127.0.0.1:<port>", once recovery is done
    if not line.startswith("PAM listener on"):
        proc.kill()  # never leave a listener behind the test
        _, errors = proc.communicate(timeout=30)
        pytest.fail(f"the listener did not start: {line or errors}")
    return proc, int(line.rsplit(":", 1)[1])


async def burst_then_kill(port: int, proc: subprocess.Popen[str], messages: list[str]) -> dict[int, str]:
    answers: dict[int, str] = {}
    sending = asyncio.create_task(send_many(port, messages, answers=answers))
    while len(answers) < BURST // 4 and not sending.done():
        await asyncio.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    await sending
    return answers


@pytest.mark.slow
def test_sigkill_mid_burst_then_resend_everything_gives_every_patient_exactly_once(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    assert run_ris(env, "db", "upgrade").returncode == 0
    messages = [pam(n) for n in range(BURST)]

    proc, port = start_listener(env)
    try:
        before = asyncio.run(burst_then_kill(port, proc, messages))
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert BURST // 4 <= len(before) < BURST, "the kill must land in the middle of the burst"
    assert set(before.values()) == {"AA"}

    proc, port = start_listener(env)  # recovers what was stored but not applied, then listens
    try:
        after = asyncio.run(send_many(port, messages))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert after == dict.fromkeys(range(BURST), "AA"), "every resend is accepted, the ACKed ones too"

    url = f"sqlite:///{tmp_path / 'ris.db'}"
    with Session(db.get_engine(url)) as s:
        ipps = Counter(s.exec(select(Patient.ipp)).all())
        outcomes = Counter(s.exec(select(InboundMessage.outcome)).all())
    db.clear_engines()
    assert ipps == Counter({f"R{n:05d}": 1 for n in range(BURST)})
    assert outcomes == {"accepted": BURST}
