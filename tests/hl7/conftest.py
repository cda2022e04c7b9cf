"""HL7 test helpers: a report with its built documents and planned deliveries; the ANS examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from ris import documents
from ris.ids import delivery_key
from ris.lifecycle import reports, routing
from ris.lifecycle.routing import PlannedDelivery
from ris.site.settings import SiteSettings
from ris.store import deliveries
from ris.store.documents import store
from ris.store.models import Delivery, ReportStatus
from ris.store.reports import ReportBundle, load_bundle
from tests import factories

EXAMPLES = "reference/hl7v2-examples"
MDM_DIR = f"{EXAMPLES}/Vague_2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/MDM"
ORU_DIR = f"{EXAMPLES}/Vague_2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/ORU"
ZAM_DIR = f"{EXAMPLES}/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission_initiale_ORU"


def read_example(shared: Path, relative: str) -> str:
    """ANS example files use LF between segments; HL7 uses CR (library-notes.md §1: newline="")."""
    with open(shared / relative, newline="", encoding="utf-8") as handle:
        return handle.read().strip().replace("\r\n", "\r").replace("\n", "\r")


def with_documents(session: Session, bundle: ReportBundle, settings: SiteSettings | None = None) -> None:
    """Build our own PDF/A + CDA for the version and store them as the documents task does."""
    built = documents.build(bundle, settings or SiteSettings())
    store(session, bundle.report.id, bundle.version.version, built)
    session.commit()


def plan(
    session: Session, bundle: ReportBundle, *, action: str = "initial", hl7_recipient: str = routing.PFI
) -> list[Delivery]:
    """Delivery rows as the planning step makes them (routing.plan with the PFI route), each with its key.

    A deletion of an already published version needs its own hl7 row (own MSH-10): the unique
    (report, version, channel, recipient) constraint makes it use another recipient label."""
    rows = []
    for planned in routing.plan(bundle, pfi=True):
        if action == "delete" and planned.channel.value != "hl7":
            continue
        recipient = hl7_recipient if planned.channel.value == "hl7" else planned.recipient
        row = Delivery(
            report_id=bundle.report.id,
            version=bundle.version.version,
            action=action,
            channel=planned.channel,
            recipient=recipient,
            route=planned.route,
            status=planned.status,
            idempotency_key=delivery_key(planned.channel),
        )
        session.add(row)
        deliveries.set_status(session, row, planned.status, planned.reason)
        rows.append(row)
    session.commit()
    return rows


def as_planned(rows: list[Delivery]) -> list[PlannedDelivery]:
    return [
        PlannedDelivery(r.channel, r.recipient, r.status, r.reason, r.route)
        for r in rows
        if r.channel.value != "hl7"
    ]


def replacement(session: Session, bundle: ReportBundle) -> ReportBundle:
    """Version n+1 of the report (« annule et remplace »), validated by the same radiologist."""
    report = bundle.report
    report.status = ReportStatus.draft
    report.conclusion += " Correction : latéralité précisée."
    session.add(report)
    reports.validate(session, report.id, factories.RADIOLOGIST_RPPS)
    session.commit()
    return load_bundle(session, report.id)


def hl7_row(rows: list[Delivery]) -> Delivery:
    return next(r for r in rows if r.channel.value == "hl7")


@pytest.fixture
def mdm_settings() -> SiteSettings:
    settings = SiteSettings()
    settings.hl7.message_type = "MDM"
    return settings


@pytest.fixture
def oru_settings() -> SiteSettings:
    settings = SiteSettings()
    settings.hl7.message_type = "ORU"
    return settings
