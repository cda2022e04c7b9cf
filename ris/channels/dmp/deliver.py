"""One direct DMP delivery, store side: the request to post now, and recording what came of it.

The request is rebuilt from the stored CDA on every attempt with the delivery's own idempotency key, so a
retry carries the very same SubmissionSet uniqueId, entryUUID and MessageID (only the VIHF is signed
again). The gates are evaluated again when the copy leaves; the masking / visibility codes are those of
that moment (routing.dmp_visibility).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session

from ris.channels.dmp import transactions, vihf
from ris.channels.dmp.client import DmpConfig, Request
from ris.channels.dmp.metadata import Submission, SubmissionIds
from ris.documents import xds_metadata as cda_header
from ris.identity.partners import record_partner_exchange
from ris.lifecycle import routing
from ris.lifecycle.distribution import DELETE, REACHED, VISIBILITY, dmp_submissions
from ris.site.settings import SiteSettings
from ris.store import blobs, deliveries
from ris.store import documents as stored_documents
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import ReportBundle, load_bundle

PARTNER = "DMP"


class DmpRuleError(ValueError):
    """A delivery that cannot be a DMP submission (names the field and the rule)."""


@dataclass(frozen=True)
class Attempt:
    """One try: `request` is None when there is nothing to send (already sent, blocked)."""

    delivery_id: int
    status: DeliveryStatus
    report_id: str
    version: int
    request: Request | None = None
    number: int = 0
    refused: str | None = None  # a reason to fail at once, without sending


def context(
    settings: SiteSettings, config: DmpConfig, signing: transactions.Signing, bundle: ReportBundle
) -> transactions.Context:
    dmp = settings.dmp
    software = vihf.Software(dmp.lps_id, dmp.lps_name, dmp.lps_version, dmp.homologation, dmp.vihf_version)
    return transactions.Context(
        config=config,
        signing=signing,
        software=software,
        sector=settings.facility.facility_type_code,
        secret_connection=bundle.report.secret_connection,
    )


def _entry(row: Delivery) -> str:
    return SubmissionIds(row.idempotency_key).entry_uuid


def _logical(rows: list[Delivery]) -> list[Delivery]:
    """The feeds and replacements (each a logical document of the registry), without their updates."""
    return [r for r in rows if r.action != VISIBILITY]


def build_request(
    session: Session, row: Delivery, settings: SiteSettings, ctx: transactions.Context, *, now: dt.datetime
) -> Request:
    """The request of `row` now (ITI-41, ITI-57 or ITI-62), from the stored CDA of its version."""
    bundle = load_bundle(session, row.report_id, row.version)
    document = stored_documents.find(session, row.report_id, row.version)
    if document is None:
        raise DmpRuleError(f"report {row.report_id} v{row.version}: no documents built yet")
    cda = blobs.get(session, document.cda_sha256)
    header = cda_header.read(cda)
    if header.patient_id is None:
        raise DmpRuleError(
            f"report {row.report_id} v{row.version}: the stored CDA carries no INS (recordTarget/patientRole"
            "/id), the DMP needs the qualified INS (INS rule 28)"
        )
    earlier = dmp_submissions(session, row.report_id, row.version)
    ids = SubmissionIds(row.idempotency_key)
    source = settings.dmp.source_id or settings.facility.oid
    submitted = now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    visibility = routing.dmp_visibility(bundle, settings.dmp)
    if row.action == DELETE:
        entries = [_entry(r) for r in earlier]
        return transactions.delete(header, row.idempotency_key, entries, ctx, now)
    if row.action == VISIBILITY:
        own = [r for r in _logical(earlier) if r.version == row.version]
        if not own:
            raise DmpRuleError(f"delivery {row.id}: the version's DMP copy never reached the DMP")
        updates = [r for r in earlier if r.action == VISIBILITY and r.version == row.version]
        sub = Submission(
            ids, visibility, source, submitted, update_of=_entry(own[-1]), previous_version=1 + len(updates)
        )
        return transactions.update(header, sub, ctx, now)
    previous = [r for r in _logical(earlier) if r.version < row.version]
    replaces = _entry(previous[-1]) if previous and row.action == "replace" else None
    sub = Submission(ids, visibility, source, submitted, replaces=replaces)
    return transactions.provide(cda, header, sub, ctx, now)


def prepare(
    session: Session,
    delivery_id: int,
    settings: SiteSettings,
    config: DmpConfig,
    signing: transactions.Signing,
    *,
    now: dt.datetime,
) -> Attempt:
    """Count an attempt and build the request; a delivery that already reached the DMP is never sent again."""
    row = session.get(Delivery, delivery_id)
    if row is None or row.channel is not Channel.dmp or row.route != "direct":
        raise DmpRuleError(f"delivery {delivery_id}: not a direct DMP delivery")
    if row.status in REACHED or row.status in (DeliveryStatus.blocked, DeliveryStatus.waiting_announcement):
        return Attempt(row.id, row.status, row.report_id, row.version)
    bundle = load_bundle(session, row.report_id, row.version)
    reason = routing.withheld_because(bundle, Channel.dmp, settings.dmp) if row.action != DELETE else None
    if reason:
        deliveries.set_status(session, row, DeliveryStatus.blocked, f"at send time: {reason}")
        return Attempt(row.id, row.status, row.report_id, row.version)
    try:
        request = build_request(session, row, settings, context(settings, config, signing, bundle), now=now)
    except (DmpRuleError, cda_header.CdaHeaderError) as exc:
        return Attempt(row.id, row.status, row.report_id, row.version, refused=str(exc))
    row.attempts += 1
    row.external_id = _entry(row)
    if row.status is not DeliveryStatus.pending:  # an administrator's retry of a failed delivery
        deliveries.set_status(session, row, DeliveryStatus.pending, f"attempt {row.attempts}")
    session.add(row)
    return Attempt(row.id, DeliveryStatus.pending, row.report_id, row.version, request, number=row.attempts)


def record_sent(session: Session, delivery_id: int, answer: str) -> DeliveryStatus:
    """The registry's Success is the DMP's own acknowledgement (the document is registered): the copy is
    `acknowledged` at once, as a PFI-relayed copy is by its positive ZAM, and counts as fed."""
    row = session.get(Delivery, delivery_id)
    deliveries.set_status(session, row, DeliveryStatus.acknowledged, f"registered by the DMP: {answer}"[:500])
    if row.action != DELETE:
        bundle = load_bundle(session, row.report_id, row.version)
        record_partner_exchange(session, bundle.patient, PARTNER, Channel.dmp, bundle.version.document_id)
    return row.status
