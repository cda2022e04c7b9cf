"""Migration 0007 (patient refusals, RIS.MSS.21 / RIS.MSS.25): existing report refusals survive the upgrade
as overrides, a False becomes "follow the patient", and the downgrade folds patient refusals back into the
reports so that none is lost. The new table's constraints hold."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, SQLModel

from ris.lifecycle import refusals
from ris.store import db
from tests import factories

RPPS = factories.RADIOLOGIST_RPPS


def _columns(url: str, ids: tuple[str, ...]) -> dict[str, tuple]:
    with db.get_engine(url).connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, refuse_mss_patient, refuse_mss_ps FROM report ORDER BY id")
        )
        return {rid: (_bool(patient), _bool(ps)) for rid, patient, ps in rows if rid in ids}


def _bool(value) -> bool | None:
    return None if value is None else bool(value)


def _tables(url: str) -> set[str]:
    with db.get_engine(url).connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def round_trip(url: str) -> None:
    """Also run on PostgreSQL by tests/store/test_postgres.py."""
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        followed = factories.validated_report(session, copies=0)  # follows its patient's refusal
        refusals.record(session, followed.patient, "mss-patient", True, RPPS)
        refusals.record(session, followed.patient, "mss-ps", True, RPPS)
        refusals.record(session, followed.patient, "mss-ps", False, RPPS)  # withdrawn: latest row wins
        allowed = factories.validated_report(
            session, patient_row=followed.patient, copies=0, refuse_mss_patient=False
        )
        refusing = factories.validated_report(session, copies=0, refuse_mss_ps=True)
        session.commit()
        ids = followed.report.id, allowed.report.id, refusing.report.id
    assert _columns(url, ids) == {ids[0]: (None, None), ids[1]: (False, None), ids[2]: (None, True)}
    db.clear_engines()

    command.downgrade(db.alembic_config(url), "0006")
    assert "patientrefusal" not in _tables(url)
    assert _columns(url, ids) == {ids[0]: (True, False), ids[1]: (False, False), ids[2]: (False, True)}
    db.clear_engines()

    db.upgrade(url)
    assert _columns(url, ids) == {ids[0]: (True, None), ids[1]: (None, None), ids[2]: (None, True)}
    with db.get_engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_downgrade_keeps_every_refusal_and_upgrade_keeps_refusals_as_overrides(db_url):
    round_trip(db_url)


def test_upgrade_from_0006_turns_false_into_follow_the_patient(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0006")
    with db.get_engine(url).begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO patient (ipp, birth_name, first_birth_given_name, birth_date, sex, "
                "birth_place_code, status, attributes, justificatif_high_confidence, created_at, updated_at) "
                "VALUES ('IPP1', 'X', 'Y', '1980-01-01', 'M', '75056', 'PROV', '[]', 0, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO exam (order_id, accession_number, study_instance_uid, patient_id, modality, "
                "exam_code, exam_label, encounter_class, started_at) VALUES "
                "('O1', 'A1', '1.2.3', 1, 'CT', '24727-0', 'l', 'O', '2026-01-01 00:00:00'), "
                "('O2', 'A2', '1.2.4', 1, 'CT', '24727-0', 'l', 'O', '2026-01-01 00:00:00')"
            )
        )
        for n, (patient, ps) in enumerate([(1, 0), (0, 1)], 1):
            connection.execute(
                sa.text(
                    "INSERT INTO report (id, exam_id, set_id, version, status, title, body, conclusion, "
                    "author_rpps, announcement_required, dmp_blocked, refuse_mss_patient, refuse_mss_ps, "
                    "mask_ps, invisible_legal_reps, secret_connection, confidentiality, created_at, "
                    f"updated_at) VALUES ('R{n}', {n}, '2.25.{n}', 0, 'draft', 't', 'b', '', '{RPPS}', 0, 0, "
                    f"{patient}, {ps}, 0, 0, 0, 'N', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
    db.upgrade(url)
    assert _columns(url, ("R1", "R2")) == {"R1": (True, None), "R2": (None, True)}
    db.clear_engines()


def test_the_refusal_channel_and_patient_are_constrained(session):
    bundle = factories.validated_report(session, copies=0)
    with pytest.raises(StatementError):
        session.execute(
            sa.text(
                "INSERT INTO patientrefusal (patient_id, channel, refused, at, by) "
                "VALUES (:p, 'dmp', 1, '2026-01-01 00:00:00', 'worklist')"
            ),
            {"p": bundle.patient.id},
        )
        session.commit()
    session.rollback()
    with pytest.raises(IntegrityError):
        session.execute(
            sa.text(
                "INSERT INTO patientrefusal (patient_id, channel, refused, at, by) "
                "VALUES (999999, 'mss-ps', 1, '2026-01-01 00:00:00', 'worklist')"
            )
        )
        session.commit()
