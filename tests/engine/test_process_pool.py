"""The rendering process pool: checked facts go in, the same bytes as a build in this process come out,
and a pool process that dies is replaced without losing the job."""

from __future__ import annotations

import io
import os
import signal

import pikepdf.pdfa
import pytest
from sqlmodel import Session

from ris import documents
from ris.process_pool import ProcessPool
from ris.settings import SiteSettings
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
