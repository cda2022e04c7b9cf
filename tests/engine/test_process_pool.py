"""The rendering process pool: checked facts go in, the same bytes as a build in this process come out,
and a pool process that dies is replaced without losing the job."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pikepdf.pdfa
import pytest
from sqlmodel import Session

from ris import documents
from ris.process_pool import ProcessPool
from ris.site.settings import SiteSettings
from tests import factories


@pytest.fixture(scope="module")
def pool():
    pool = ProcessPool(1).start()
    yield pool
    pool.shutdown()


async def test_a_render_in_the_pool_is_the_build_of_this_process(pool: ProcessPool, session: Session):
    bundle = factories.validated_report(session)
    settings = SiteSettings()
    facts = documents.collect(bundle, settings)
    built = await pool.run(documents.render, facts, settings)
    assert built == documents.build(bundle, settings)  # same facts, same bytes
    assert pikepdf.pdfa.validate_written(io.BytesIO(built.pdf), "1b").passed


async def test_a_dead_pool_process_is_replaced(pool: ProcessPool):
    first = await pool.run(os.getpid)
    os.kill(first, signal.SIGKILL)
    assert await pool.run(os.getpid) not in (first, os.getpid())


def test_pool_processes_exit_when_their_engine_is_killed(tmp_path):
    """An engine killed with SIGKILL leaves no rendering process behind (they were seen orphaned)."""
    script = (
        "import os, sys\n"
        "from ris.process_pool import ProcessPool\n"
        "pool = ProcessPool(2).start()\n"
        "import asyncio\n"
        "pids = {asyncio.run(pool.run(os.getpid)) for _ in range(8)}\n"
        "print(' '.join(map(str, sorted(pids))), flush=True)\n"
        "sys.stdin.read()\n"
    )
    engine = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    children = [int(pid) for pid in engine.stdout.readline().split()]
    assert children and all(_alive(pid) for pid in children)
    engine.kill()
    engine.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if _alive(pid)], "rendering processes outlived their engine"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
