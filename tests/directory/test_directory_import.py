"""Import of the synthetic extractions (same format as annuaire.sante.fr): creation, update, unchanged,
refused lines with their numbers, and the RIS's correspondents kept in step (RIS.ANN.01–03)."""

from __future__ import annotations

import io

import pytest
from sqlmodel import select

from ris.directory import extraction, referenced
from ris.directory.importer import import_mailboxes, import_persons
from ris.directory.synthetic import SAMPLE_MAILBOXES, SAMPLE_PERSONS, rpps_number
from ris.store.models import AuditEntry, Correspondent, DirectoryMailbox, DirectoryPerson

ESSAI = rpps_number(1)


def _persons(session, data: bytes):
    return import_persons(session, io.BytesIO(data), what="test")


def test_the_synthetic_extraction_creates_each_professional_once_with_all_activities(session):
    summary = _persons(session, SAMPLE_PERSONS.read_bytes())
    assert (summary.created, summary.updated, summary.unchanged, summary.refused_count) == (5, 0, 0, 0)
    assert summary.skipped == 1  # the ADELI-only line: no RPPS, not a key of the engine
    essai = session.exec(select(DirectoryPerson).where(DirectoryPerson.rpps == ESSAI)).one()
    assert essai.family == "ESSAI-FICTIF" and essai.profession == "Médecin"
    assert [s["city"] for s in essai.structures] == ["PARIS", "LYON"]

    again = _persons(session, SAMPLE_PERSONS.read_bytes())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)


def test_a_changed_line_updates_the_professional_and_a_malformed_line_is_refused_with_its_number(session):
    _persons(session, SAMPLE_PERSONS.read_bytes())
    lines = SAMPLE_PERSONS.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5].replace(b"|Cardiologie|", b"|Radio-diagnostic|")  # line 6: D'EXEMPLE
    lines.insert(3, b"8|1234|81234|DR|Docteur\n")  # too few fields: becomes line 4
    bad_rpps = lines[2].replace(b"|10009876543|", b"|1000987654X|")
    lines.append(bad_rpps)  # line 10: an RPPS that is not 11 digits
    lines.append(b"\xff\xfe broken bytes|\n")  # line 11: not UTF-8
    summary = _persons(session, b"".join(lines))
    assert summary.updated == 1 and summary.unchanged == 4 and summary.created == 0
    assert [number for number, _ in summary.refused] == [4, 10, 11]
    reasons = dict(summary.refused)
    assert "fields, the header has 56" in reasons[4]
    assert reasons[10] == "« Identifiant PP » '1000987654X': an RPPS number is 11 digits"
    assert "not UTF-8" in reasons[11]
    person = session.exec(select(DirectoryPerson).where(DirectoryPerson.rpps == rpps_number(2))).one()
    assert person.specialty == "Radio-diagnostic"


def test_a_file_without_the_extraction_header_is_refused_before_anything_is_stored(session):
    with pytest.raises(extraction.ExtractionRefused, match="column « Type d'identifiant PP » is missing"):
        _persons(session, b"nom|prenom\nA|B\n")
    assert session.exec(select(DirectoryPerson)).all() == []


def test_the_import_creates_and_updates_the_ris_correspondents_from_the_directory(session):
    """RIS.ANN.02–03: a correspondent (user or requester) created from the RPPS data, then updated by the
    next import, each change in the audit trail."""
    _persons(session, SAMPLE_PERSONS.read_bytes())
    import_mailboxes(session, io.BytesIO(SAMPLE_MAILBOXES.read_bytes()), what="test")
    row, created = referenced.adopt(session, ESSAI)
    session.commit()
    assert created and (row.family, row.given, row.title) == ("ESSAI-FICTIF", "Aurèle", "Dr")
    assert row.mss_address == "aurele.essai-fictif@medecin-demo.mssante.fr"
    assert row.organisation == "CABINET SYNTHETIQUE 103"

    renamed = SAMPLE_PERSONS.read_bytes().replace(b"|ESSAI-FICTIF|Aur", b"|ESSAI-NOUVEAU|Aur")
    summary = _persons(session, renamed)
    assert summary.correspondents_updated == 1 and summary.updated == 1
    session.refresh(row)
    assert row.family == "ESSAI-NOUVEAU"
    changes = session.exec(
        select(AuditEntry).where(
            AuditEntry.object_id == str(row.id), AuditEntry.action == "correspondent.update"
        )
    ).all()
    assert [(c.actor, c.detail["fields"]) for c in changes] == [("annuaire-sante", ["family"])]


def test_mailboxes_are_imported_withdrawn_when_no_longer_listed_and_fill_missing_addresses(session):
    session.add(Correspondent(rpps="10009876543", family="LÉGER", given="Anaïs"))
    session.commit()
    summary = import_mailboxes(session, io.BytesIO(SAMPLE_MAILBOXES.read_bytes()), what="test")
    assert (summary.created, summary.refused_count, summary.correspondents_updated) == (5, 0, 1)
    leger = session.exec(select(Correspondent).where(Correspondent.rpps == "10009876543")).one()
    assert leger.mss_address == "anais.leger@medecin-demo.mssante.fr"

    lines = SAMPLE_MAILBOXES.read_bytes().splitlines(keepends=True)
    kept = [*lines[:5], b"XYZ|nobody@example.mssante.fr|||" + b"|" * 17 + b"\n"]
    again = import_mailboxes(session, io.BytesIO(b"".join(kept)), what="test")
    assert (again.unchanged, again.withdrawn) == (4, 1)
    assert again.refused == [(6, "« Type de BAL » 'XYZ': one of APP, CAB, ORG, PER")]
    assert session.exec(select(DirectoryMailbox.address).where(DirectoryMailbox.kind == "ORG")).all() == []
