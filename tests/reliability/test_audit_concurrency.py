"""Eight processes write to one PostgreSQL at once through the engine's own functions (validating reports,
planning their deliveries, recording announcements, recording the PFI's ACK and the ZAM receipts of the
same delivery rows) while two sealers extend the audit chain: no deadlock, every unit of work commits,
and afterwards the chain holds every entry, none awaiting after a last seal, and still finds a rewrite.

The ACK of a version (its hl7 row, then each relayed row, locked) and a ZAM for one of those relayed rows
(locked, then audited) are recorded by different processes at about the same time. When writers chained
the trail themselves, under a global lock taken at flush time after their row locks, that pair deadlocked
(issue 21: 15 of 44 report runs failed); this workload with such a lock put back met 5 deadlocks."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from ris.channels.hl7 import publish
from ris.channels.hl7.receipts import Receipt, ReceiptRefused, apply_receipt
from ris.ids import new_oid
from ris.lifecycle import distribution, reports
from ris.store import audit, db
from ris.store.models import AuditEntry, Channel, Delivery, DeliveryStatus, Exam, Report, ReportRecipient
from tests import factories

pytestmark = pytest.mark.slow

PROCESSES = 8
REPORTS_EACH = 6
RPPS = factories.RADIOLOGIST_RPPS
RECEIPTS = ("Z01", "Z02")  # the DMP's receipt and the requester's mailbox delivery, both relayed


def draft_reports(url: str, n: int) -> list[tuple[str, str]]:
    """`n` draft reports of qualified patients, each with an announcement to record and a requester with
    an MSSanté address; (report id, requester address) each."""
    drafts = []
    with db.session_scope(url) as s:
        factories.correspondent(s, RPPS, "LEFÈVRE", "Émile", "emile.lefevre@imagerie-demo.mssante.fr")
        for i in range(n):
            address = f"requester{i}@test-ci-sis.mssante.fr"
            requester = factories.correspondent(s, f"1{i:010d}", "FRANÇOIS", "Hélène", address)
            exam = Exam(
                order_id=f"ORD{i:06d}",
                accession_number=f"ACC{i:06d}",
                study_instance_uid=f"1.2.250.1.999.1.{i}",
                patient_id=factories.patient(s).id,
                requester_id=requester.id,
                modality="CT",
                exam_code="24727-0",
                exam_label="Scanner tête avec injection",
                started_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
            )
            s.add(exam)
            s.flush()
            report = Report(
                id=f"CR{i:06d}",
                exam_id=exam.id,
                set_id=new_oid(),
                title="Scanner cérébral",
                body="Résultats : pas de lésion.",
                author_rpps=RPPS,
                announcement_required=True,
            )
            s.add(report)
            s.add(ReportRecipient(report_id=report.id, correspondent_id=requester.id, role="requester"))
            drafts.append((report.id, address))
    return drafts


def _plan(session: Session, report_id: str) -> None:
    distribution.plan_version(session, report_id, 1, pfi=True)


def _ack(session: Session, report_id: str) -> None:
    """The PFI's ACK AA of the version's message: acknowledged, its relayed copies sent."""
    hl7 = distribution.own_message(session, report_id, 1)
    attempt = publish.Attempt(hl7.id, hl7.idempotency_key, DeliveryStatus.pending, er7=None, number=1)
    publish.record_accepted(session, attempt, partner="pfi")


def _zam(session: Session, report_id: str, trigger: str, address: str) -> bool:
    """A positive ZAM about the version's message; False while that message is not planned yet, or its
    copies not sent yet (a receipt is refused, before it writes anything, about a copy never sent)."""
    hl7 = distribution.own_message(session, report_id, 1)
    if hl7 is None:
        return False
    try:
        apply_receipt(
            session, Receipt(trigger, hl7.idempotency_key, True, address if trigger != "Z01" else None, ())
        )
    except ReceiptRefused:
        return False
    return True


def writer(url: str, own: list[tuple[str, str]], theirs: list[tuple[str, str]], start: Any, out: Any) -> None:
    """Validate, plan, announce and acknowledge its own reports; record the receipts of a neighbour's as
    soon as their messages exist. Each step is one unit of work, run once: any error is reported."""
    committed = 0

    def unit(fn: Any, *args: Any) -> Any:
        nonlocal committed
        with db.session_scope(url) as session:
            result = fn(session, *args)
        committed += 1
        return result

    receipts = [(report_id, trigger, address) for report_id, address in theirs for trigger in RECEIPTS]

    def receive() -> None:
        for receipt in list(receipts):
            if unit(_zam, *receipt):
                receipts.remove(receipt)

    try:
        start.wait()
        for report_id, _ in own:
            unit(reports.validate, report_id, RPPS)
            unit(_plan, report_id)
            receive()
            unit(reports.record_announcement, report_id, RPPS)
            unit(_ack, report_id)
            receive()
        deadline = time.monotonic() + 30
        while receipts and time.monotonic() < deadline:
            time.sleep(0.05)
            receive()
        out.put((committed, f"receipts never matched: {receipts}" if receipts else None))
    except Exception as exc:
        out.put((committed, f"{type(exc).__name__}: {exc}"))
    finally:
        db.clear_engines()


def sealer(url: str, stop: threading.Event, rounds: list[int | str | None]) -> None:
    """An engine worker's sealing loop, much faster (a thread of the test: it shares nothing but the
    database with the writers). Each round's count, None when the other sealer had the chain, or the
    error that ended the loop."""
    try:
        while not stop.is_set():
            with db.session_scope(url) as session:
                rounds.append(audit.seal(session))
            time.sleep(0.01)
    except Exception as exc:
        rounds.append(f"{type(exc).__name__}: {exc}")


def deadlocks(url: str) -> int:
    with db.get_engine(url).connect() as connection:
        connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
        return connection.exec_driver_sql(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).scalar_one()


def test_eight_writers_and_two_sealers_never_deadlock_and_the_chain_holds(pg_url: str) -> None:
    drafts = draft_reports(pg_url, PROCESSES * REPORTS_EACH)
    shares = [drafts[p * REPORTS_EACH : (p + 1) * REPORTS_EACH] for p in range(PROCESSES)]
    deadlocks_before = deadlocks(pg_url)

    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(PROCESSES + 1), spawn.Queue()
    writers = [
        spawn.Process(target=writer, args=(pg_url, shares[p], shares[(p + 1) % PROCESSES], start, out))
        for p in range(PROCESSES)
    ]
    for process in writers:
        process.start()
    stop, rounds = threading.Event(), [[], []]
    sealers = [threading.Thread(target=sealer, args=(pg_url, stop, r)) for r in rounds]
    try:
        start.wait(timeout=180)  # every writer has imported the engine (slow on a busy machine): go
        for thread in sealers:
            thread.start()
        results = [out.get(timeout=180) for _ in writers]
    finally:
        stop.set()
        for thread in sealers:
            if thread.is_alive():
                thread.join()
        for process in writers:  # nothing left running, whatever happened
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    assert [process.exitcode for process in writers] == [0] * PROCESSES

    assert [error for _, error in results if error] == []
    units = (4 + len(RECEIPTS)) * REPORTS_EACH  # per writer: 4 per own report, the receipts of another's
    assert [committed >= units for committed, _ in results] == [True] * PROCESSES
    assert deadlocks(pg_url) == deadlocks_before == 0
    assert [r for r in rounds[0] + rounds[1] if isinstance(r, str)] == []
    assert sum(r or 0 for r in rounds[0] + rounds[1]) > 0  # the sealers sealed during the burst

    with Session(db.get_engine(pg_url)) as s:  # every unit of work left its mark
        versions = s.exec(select(Report).where(Report.announcement_recorded_at.is_not(None))).all()
        assert len(versions) == len(drafts) and {r.version for r in versions} == {1}
        rows = s.exec(select(Delivery).where(Delivery.route == "pfi", Delivery.action == "initial")).all()
        status = {(d.report_id, d.channel): d.status for d in rows}
        for report_id, _ in drafts:
            assert status[report_id, Channel.hl7] is DeliveryStatus.acknowledged
            assert status[report_id, Channel.dmp] is DeliveryStatus.acknowledged  # Z01
            assert status[report_id, Channel.mss_ps] is DeliveryStatus.acknowledged  # Z02
        written = s.exec(select(sa.func.count()).select_from(AuditEntry)).one()

    with db.session_scope(pg_url) as s:  # a last round for the entries of the last transactions
        audit.seal(s)
    with Session(db.get_engine(pg_url)) as s:
        chain = audit.verify(s)
    assert (chain.entries, chain.awaiting, chain.problems) == (written, 0, [])

    with db.get_engine(pg_url).begin() as connection:  # the owner disables the guard and rewrites
        connection.exec_driver_sql("ALTER TABLE auditentry DISABLE TRIGGER auditentry_append_only")
        target = connection.exec_driver_sql("SELECT min(id) + 7 FROM auditentry").scalar_one()
        connection.exec_driver_sql(f"UPDATE auditentry SET actor = 'forger' WHERE id = {target}")
        connection.exec_driver_sql("ALTER TABLE auditentry ENABLE TRIGGER auditentry_append_only")
    with Session(db.get_engine(pg_url)) as s:
        assert audit.verify(s).problems == [f"entry {target}: content differs from what was written"]
