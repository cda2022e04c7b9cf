"""Builders of realistic store rows for tests (fictitious people; ANS test identities where useful)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from sqlmodel import Session

from ris.hl7v2.ack_writer import Party
from ris.ids import new_oid
from ris.lifecycle import reports
from ris.operations import retry
from ris.site.settings import SiteSettings
from ris.store.models import (
    Correspondent,
    Exam,
    IdentityStatus,
    Patient,
    Report,
    ReportRecipient,
)
from ris.store.reports import ReportBundle, correspondent_by_rpps, load_bundle

_seq = itertools.count(1)
# The demo site of SiteSettings() signing its acknowledgements (MSH-3 / MSH-4).
SITE_PARTY = Party(SiteSettings().hl7.sending_application, SiteSettings().facility.finess_geo)

RADIOLOGIST_RPPS = "10001234567"
REQUESTER_RPPS = "10009876543"


def patient(session: Session, *, qualified: bool = True, **overrides) -> Patient:
    """PAT-TROIS DOMINIQUE, the ANS test patient (test OID .10), qualified unless said otherwise."""
    n = next(_seq)
    values = dict(
        ipp=f"IPP{n:06d}",
        birth_name="PAT-TROIS",
        birth_given_names="DOMINIQUE MARIE-LOUISE",
        first_birth_given_name="DOMINIQUE",
        birth_date=dt.date(1979, 3, 28),
        sex="F",
        birth_place_code="63220",
        used_name="PAT-TROIS",
        used_given_name="DOMINIQUE",
        street="28 Av de Breteuil",
        postal_code="75007",
        city="PARIS",
    )
    if qualified:
        values.update(
            ins_matricule="279035121518989", ins_oid="1.2.250.1.213.1.4.10", status=IdentityStatus.QUAL
        )
    values.update(overrides)
    row = Patient(**values)
    session.add(row)
    session.flush()
    return row


def correspondent(
    session: Session, rpps: str, family: str, given: str, mss: str | None, **kw
) -> Correspondent:
    row = Correspondent(rpps=rpps, family=family, given=given, mss_address=mss, **kw)
    session.add(row)
    session.flush()
    return row


def validated_report(
    session: Session,
    *,
    qualified: bool = True,
    patient_row: Patient | None = None,
    copies: int = 1,
    **report_fields,
) -> ReportBundle:
    """A report with a radiologist, a requester and `copies` other recipients, validated as version 1."""
    n = next(_seq)
    radiologist = correspondent_by_rpps(session, RADIOLOGIST_RPPS)
    if radiologist is None:
        radiologist = correspondent(
            session,
            RADIOLOGIST_RPPS,
            "LEFÈVRE",
            "Émile",
            "emile.lefevre@imagerie-demo.mssante.fr",
            organisation="Centre d'Imagerie Médicale Démo",
            specialty_code="G15_10/SM74",
        )
    requester = correspondent(
        session,
        f"1{n:010d}",
        "FRANÇOIS",
        "Hélène",
        f"helene.francois{n}@test-ci-sis.mssante.fr",
        organisation="Cabinet de médecine générale",
    )
    pat = patient_row or patient(session, qualified=qualified)
    exam = Exam(
        order_id=f"ORD{n:06d}",
        accession_number=f"ACC{n:06d}",
        study_instance_uid=f"1.2.250.1.999.1.{n}",
        patient_id=pat.id,
        requester_id=requester.id,
        modality="CT",
        exam_code="24727-0",
        exam_label="Scanner tête avec injection",
        started_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
        ended_at=dt.datetime(2026, 11, 20, 9, 50, tzinfo=dt.UTC),
    )
    session.add(exam)
    session.flush()
    report = Report(
        id=f"CR{n:06d}",
        exam_id=exam.id,
        set_id=new_oid(),
        title="Scanner cérébral avec injection",
        body="Indication : céphalées inhabituelles.\nTechnique : acquisition hélicoïdale après injection.\n"
        "Résultats : pas de lésion hémorragique ; ventricules de taille normale ; œdème absent.",
        conclusion="Examen normal. Pas d'anomalie décelée à l'étage encéphalique.",
        author_rpps=radiologist.rpps,
        **report_fields,
    )
    session.add(report)
    session.add(ReportRecipient(report_id=report.id, correspondent_id=requester.id, role="requester"))
    for k in range(copies):
        other = correspondent(
            session, f"2{n:06d}{k:04d}", "MARTIN", "Chloé", f"chloe.martin{n}.{k}@hopital-demo.mssante.fr"
        )
        session.add(ReportRecipient(report_id=report.id, correspondent_id=other.id, role="copy"))
    session.flush()
    reports.validate(session, report.id, radiologist.rpps)
    session.commit()
    return load_bundle(session, report.id)


def retry_request(actor: str, reason: str, **targets: Any) -> dict[str, Any]:
    """What `ris delivery retry` does, once it checked who acts, before it starts a retry run: it records
    the request (who, why, what, a new address) and returns the run's parameters (its id, the targets)."""
    from ris.store.db import session_scope

    with session_scope() as session:
        request_id = retry.record_request(session, retry.Mandate(actor, reason, **targets))
    return {"request_id": request_id, **{k: v for k, v in targets.items() if k != "to"}}
