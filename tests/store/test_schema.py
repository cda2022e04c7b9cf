"""The schema: migrations from empty, the constraints that protect the state of record."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel, select

from ris.ids import new_key
from ris.store import audit, blobs, db, deliveries
from ris.store.models import (
    AuditEntry,
    Channel,
    Delivery,
    DeliveryStatus,
    IdentityStatus,
    Patient,
    Report,
)
from tests import factories


def test_migrations_from_empty_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    db.upgrade(url)
    with db.get_engine(url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        tables = set(sa.inspect(connection).get_table_names())
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"patient", "report", "reportversion", "delivery", "deliveryevent", "auditentry", "blob"} <= tables


def test_upgrade_is_repeatable(db_url):
    db.upgrade(db_url)  # already at head: nothing to do, nothing broken
    with db.session_scope(db_url) as session:
        assert session.exec(select(Patient)).all() == []


def _patient(**overrides) -> Patient:
    values = dict(
        ipp="IPP1",
        birth_name="MARTIN",
        first_birth_given_name="LUC",
        birth_date=dt.date(1980, 5, 17),
        sex="M",
        birth_place_code="75056",
    )
    values.update(overrides)
    return Patient(**values)


def _commit(session: Session, *rows) -> None:
    session.add_all(rows)
    session.commit()


def _delivery(report_id: str, **overrides) -> Delivery:
    """An HL7 delivery of version 1, pending, with a fresh key unless the test says otherwise."""
    values = dict(
        report_id=report_id,
        version=1,
        channel=Channel.hl7,
        recipient="pfi",
        status=DeliveryStatus.pending,
        idempotency_key=new_key(),
    )
    values.update(overrides)
    return Delivery(**values)


def test_ipp_is_unique(session):
    _commit(session, _patient())
    with pytest.raises(IntegrityError):
        _commit(session, _patient(birth_name="DURAND"))


def test_matricule_never_travels_without_its_oid(session):
    with pytest.raises(IntegrityError, match="ins_matricule_with_oid"):
        _commit(session, _patient(ins_matricule="279035121518989"))


def test_matricule_has_fifteen_characters(session):
    with pytest.raises(IntegrityError, match="ins_matricule_length"):
        _commit(session, _patient(ins_matricule="27903512151898", ins_oid="1.2.250.1.213.1.4.8"))


def test_sex_is_constrained(session):
    with pytest.raises(IntegrityError, match="ck_patient_sex"):
        _commit(session, _patient(sex="X"))


def test_identity_status_values_are_constrained(session):
    _commit(session, _patient())
    with pytest.raises(StatementError):
        session.execute(sa.text("UPDATE patient SET status = 'QUALIFIEE'"))
        session.commit()


def test_foreign_keys_are_enforced(session):
    with pytest.raises(IntegrityError):
        _commit(
            session, Report(id="R1", exam_id=999, set_id="2.25.1", title="t", body="b", author_rpps="1" * 11)
        )


def test_one_delivery_per_version_channel_recipient(session):
    bundle = factories.validated_report(session)
    _commit(session, _delivery(bundle.report.id))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        _commit(session, _delivery(bundle.report.id))


def test_idempotency_keys_are_unique(session):
    bundle = factories.validated_report(session)
    key = new_key()
    _commit(session, _delivery(bundle.report.id, idempotency_key=key))
    with pytest.raises(IntegrityError):
        _commit(
            session, _delivery(bundle.report.id, channel=Channel.dmp, recipient="dmp", idempotency_key=key)
        )


def test_audit_trail_is_append_only(session):
    entry = audit.record(
        session, actor="10001234567", action="identity.read", object_type="patient", object_id=1
    )
    session.commit()
    entry.action = "something else"
    with pytest.raises(audit.AuditTrailIsAppendOnly):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditEntry, entry.id))
    with pytest.raises(audit.AuditTrailIsAppendOnly):
        session.commit()


def test_blobs_are_content_addressed(session):
    first = blobs.put(session, b"%PDF-1.4 same bytes", "application/pdf")
    second = blobs.put(session, b"%PDF-1.4 same bytes", "application/pdf")
    session.commit()
    assert first == second
    assert blobs.get(session, first) == b"%PDF-1.4 same bytes"
    with pytest.raises(KeyError):
        blobs.get(session, "0" * 64)


def test_delivery_timeline_records_each_status(session):
    bundle = factories.validated_report(session)
    row = _delivery(bundle.report.id)
    session.add(row)
    deliveries.set_status(session, row, DeliveryStatus.pending)
    deliveries.set_status(session, row, DeliveryStatus.failed, "AR: 207 application error")
    session.commit()
    events = deliveries.timeline(session, row.id)
    assert [e.status for e in events] == [DeliveryStatus.pending, DeliveryStatus.failed]
    assert row.reason == row.last_error == "AR: 207 application error"
    actions = session.exec(select(AuditEntry.action).where(AuditEntry.object_type == "delivery")).all()
    assert actions == ["delivery.pending", "delivery.failed"]


def test_a_failed_unit_of_work_changes_nothing(db_url):
    with pytest.raises(RuntimeError), db.session_scope(db_url) as session:
        session.add(_patient(ipp="ROLLEDBACK"))
        session.flush()
        raise RuntimeError("boom")
    with db.session_scope(db_url) as session:
        assert session.exec(select(Patient).where(Patient.ipp == "ROLLEDBACK")).first() is None


def test_status_enum_round_trips(session):
    _commit(session, _patient(status=IdentityStatus.VALI))
    assert session.exec(select(Patient)).one().status is IdentityStatus.VALI


def test_a_deletion_is_a_delivery_of_its_own(session):
    bundle = factories.validated_report(session)
    _commit(session, _delivery(bundle.report.id), _delivery(bundle.report.id, action="delete"))
    assert deliveries.find(session, bundle.report.id, 1, Channel.hl7, "pfi", "delete").action == "delete"
    assert deliveries.find(session, bundle.report.id, 1, Channel.hl7, "pfi").action == "initial"


def test_validated_versions_without_deliveries_are_found_for_dispatch(session):
    from ris.store.reports import undispatched_versions

    bundle = factories.validated_report(session)
    assert undispatched_versions(session) == [(bundle.report.id, 1)]
    validated = bundle.report.validated_at
    assert undispatched_versions(session, validated - dt.timedelta(days=3)) == [(bundle.report.id, 1)]
    # older than what the orchestration keeps: its run's idempotency key is gone, nothing restarts it
    assert undispatched_versions(session, validated + dt.timedelta(seconds=1)) == []
    # younger than the bound: its run may just not have planned yet
    assert undispatched_versions(session, None, validated - dt.timedelta(seconds=1)) == []
    assert undispatched_versions(session, None, validated) == [(bundle.report.id, 1)]
    _commit(session, _delivery(bundle.report.id))
    assert undispatched_versions(session) == []


def test_database_errors_never_quote_values(session):
    """Errors may reach logs and Prefect states: SQL parameters (names, INS) stay out of them."""
    _commit(session, _patient(birth_name="SECRETNAME"))
    with pytest.raises(IntegrityError) as caught:
        _commit(session, _patient(birth_name="SECRETNAME"))
    assert "SECRETNAME" not in str(caught.value)
