"""Who a validated version goes to, over which channel, and why a channel is blocked.

One computation feeds the PDF's recipient list (RIS.DOC.04), the HL7 PRT segments and metadata OBX,
and the delivery records, so the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ris.identity.gate import ins_refusal_reason
from ris.site.settings import DmpSending
from ris.store.models import Channel, Correspondent, DeliveryStatus
from ris.store.reports import ReportBundle

PATIENT = "patient"
DMP = "dmp"
PFI = "pfi"


@dataclass(frozen=True)
class PlannedDelivery:
    channel: Channel
    recipient: str
    status: DeliveryStatus
    reason: str | None = None
    route: str = "direct"


@dataclass(frozen=True)
class DistributionFlags:
    """The eight MetaDMPMSS indicators of the HL7 transport volet (hl7v2-transport.md §5)."""

    mask_ps: bool
    invisible_patient: bool
    invisible_legal_reps: bool
    secret_connection: bool
    modif_conf_code: bool
    dest_dmp: bool
    dest_mss_ps: bool
    dest_mss_patient: bool


def announcement_pending(bundle: ReportBundle) -> bool:
    report = bundle.report
    return report.announcement_required and report.announcement_recorded_at is None


def ps_recipients(bundle: ReportBundle) -> list[Correspondent]:
    """Professionals the report is addressed to (requester first), one per person, in a stable order."""
    seen: set[int] = set()
    people: list[Correspondent] = []
    for person in [bundle.requester, *(c for c, _ in bundle.recipients)]:
        if person is not None and person.id not in seen:
            seen.add(person.id)
            people.append(person)
    return people


def recipient_key(person: Correspondent) -> str:
    return person.mss_address or f"rpps:{person.rpps or person.id}"


def withheld_because(bundle: ReportBundle, channel: Channel, dmp: DmpSending | None = None) -> str | None:
    """Why the version may not go over `channel` now, in the user's terms; None when it may. Evaluated
    when the deliveries are planned and again when each copy leaves (a refusal, a user block or a lost
    qualification recorded meanwhile still counts: mssante.md §4, INS rule 28). `dmp`: the site's DMP
    feed settings (automatic feed, blocked exam types), when the caller has them."""
    report = bundle.report
    if channel is Channel.dmp:
        if report.dmp_blocked:
            return "DMP feed blocked by the user (RIS.DMP.03)"
        if dmp is not None and not dmp.automatic:
            return "automatic DMP feed turned off at this site (RIS.DMP.01)"
        exam = bundle.exam
        if dmp is not None and {exam.exam_code, exam.ccam_code} & set(dmp.blocked_exam_codes):
            return "DMP feed blocked for this exam type by the site (RIS.DMP.03)"
        if report.confidentiality in ("R", "V"):
            return f"confidentiality {report.confidentiality}: not shared in the DMP"
        return ins_refusal_reason(bundle.patient)
    if channel is Channel.mss_ps:
        if bundle.refusals.mss_ps:
            return "patient refused sending to professionals by MSSanté"
        return "document masked to professionals (MASQUE_PS)" if report.mask_ps else None
    if channel is Channel.mss_patient:
        if bundle.refusals.mss_patient:
            return "patient refused sending to Mon espace santé"
        return ins_refusal_reason(bundle.patient)
    return None


def plan(
    bundle: ReportBundle,
    *,
    pfi: bool,
    direct: frozenset[Channel] = frozenset(),
    dmp: DmpSending | None = None,
) -> list[PlannedDelivery]:
    """The deliveries of one version. `pfi`: the site publishes to its PFI, which relays DMP and MSSanté
    for the channels that have no direct client (`direct`)."""
    planned: list[PlannedDelivery] = []

    def route(channel: Channel) -> str | None:
        return "direct" if channel in direct else (PFI if pfi else None)

    def add(channel: Channel, recipient: str, blocked_because: str | None, *, waiting: bool = False) -> None:
        via = route(channel)
        if via is None:
            status, reason, via = DeliveryStatus.blocked, f"no route to {channel.value} at this site", "none"
        elif blocked_because:
            status, reason = DeliveryStatus.blocked, blocked_because
        elif waiting:
            status, reason = DeliveryStatus.waiting_announcement, None
        else:
            status, reason = DeliveryStatus.pending, None
        planned.append(PlannedDelivery(channel, recipient, status, reason, via))

    if pfi:
        planned.append(PlannedDelivery(Channel.hl7, PFI, DeliveryStatus.pending, None, PFI))

    add(Channel.dmp, DMP, withheld_because(bundle, Channel.dmp, dmp))
    for person in ps_recipients(bundle):
        no_address = None if person.mss_address else "correspondent has no MSSanté address"
        add(Channel.mss_ps, recipient_key(person), withheld_because(bundle, Channel.mss_ps) or no_address)
    patient_block = withheld_because(bundle, Channel.mss_patient)
    add(Channel.mss_patient, PATIENT, patient_block, waiting=announcement_pending(bundle))
    return planned


def flags(
    planned: list[PlannedDelivery], bundle: ReportBundle, *, modif_conf_code: bool = False
) -> DistributionFlags:
    def going(channel: Channel) -> bool:
        return any(p.channel is channel and p.status is DeliveryStatus.pending for p in planned)

    report = bundle.report
    return DistributionFlags(
        mask_ps=report.mask_ps,
        invisible_patient=announcement_pending(bundle),
        invisible_legal_reps=report.invisible_legal_reps,
        secret_connection=report.secret_connection,
        modif_conf_code=modif_conf_code,
        dest_dmp=going(Channel.dmp),
        dest_mss_ps=going(Channel.mss_ps),
        dest_mss_patient=going(Channel.mss_patient),
    )


def dmp_visibility(bundle: ReportBundle, dmp: DmpSending) -> tuple[str, ...]:
    """RIS.DMP.06-07: the masking / visibility codes of the DMP copy now (TRE_A07, XDS spelling): the
    report's own choices, the site's defaults, and INVISIBLE_PATIENT while an announcement is pending."""
    report = bundle.report
    codes = []
    if report.mask_ps or dmp.default_mask_ps:
        codes.append("MASQUE_PS")
    if announcement_pending(bundle):
        codes.append("INVISIBLE_PATIENT")
    if report.invisible_legal_reps or dmp.default_invisible_legal_reps:
        codes.append("INVISIBLE_REPRESENTANTS_LEGAUX")
    return tuple(codes)


def listed_recipients(bundle: ReportBundle) -> list[str]:
    """RIS.DOC.04: every recipient the report will be sent to, printed on the report.

    Professionals the patient refused are excluded (RIS.MSS.25; the effective refusals, `bundle.refusals`);
    the patient's own mailbox is listed when the report will reach it (now or after the announcement)."""
    report = bundle.report
    lines: list[str] = []
    if not bundle.refusals.mss_ps and not report.mask_ps:
        for person in ps_recipients(bundle):
            name = " ".join(p for p in (person.title, person.given, person.family) if p)
            where = person.mss_address or person.organisation or ""
            lines.append(f"{name} — {where}" if where else name)
    if not bundle.refusals.mss_patient and ins_refusal_reason(bundle.patient) is None:
        lines.append("Le patient — messagerie Mon espace santé")
    return lines
