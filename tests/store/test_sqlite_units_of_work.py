"""On SQLite, a unit of work that reads and then writes never fails with "database is locked" because
another one committed meanwhile: each takes the write lock at its start and waits its turn."""

from __future__ import annotations

import threading
import time

from sqlmodel import select

from ris.store import audit
from ris.store.db import session_scope
from ris.store.models import AuditEntry


def test_a_read_then_write_unit_of_work_waits_instead_of_failing(db_url: str):
    first_has_read = threading.Event()
    errors: list[BaseException] = []

    def reader_then_writer() -> None:
        try:
            with session_scope() as session:
                session.exec(select(AuditEntry)).all()
                first_has_read.set()
                time.sleep(0.3)  # the other unit of work tries to commit meanwhile
                audit.record(session, actor="a", action="test", object_type="t", object_id=1)
        except BaseException as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    def writer() -> None:
        first_has_read.wait()
        try:
            with session_scope() as session:
                audit.record(session, actor="b", action="test", object_type="t", object_id=2)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=reader_then_writer), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with session_scope() as session:
        stmt = select(AuditEntry.actor).where(AuditEntry.action == "test").order_by(AuditEntry.id)
        assert list(session.exec(stmt)) == ["a", "b"]  # the second waited for the first
