"""ORU^R01 (v2.5) and MDM^T02 / T10 / T04 (v2.6) carrying the CDA R2 N1 to the PFI (hl7v2-transport.md).

The message is built with hl7apy at TOLERANT level (STRICT cannot hold a real base64 payload,
library-notes.md §1); PRT lines, unknown to hl7apy's 2.5 / 2.6 models, are placed after the document OBX.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Group, Message, Segment
from hl7apy.parser import parse_segment

from ris.channels.hl7 import participants
from ris.channels.hl7.matrix import flag_values, matrix_violation
from ris.channels.hl7.vocabulary import (
    ACK_LECTURE_MSS,
    ACK_RECEPTION,
    ACTION_CODES,
    ACTIONS,
    DOCUMENT_TYPE,
    DOCUMENT_TYPE_CODE,
    METADATA,
    METADATA_SYSTEM,
    METADATA_UPDATES,
    PROFILE,
    VERSION,
    YES_NO_SYSTEM,
    Action,
    MessageType,
)
from ris.hl7v2.datatypes import dtm, yes_no
from ris.hl7v2.er7 import escape
from ris.hl7v2.msh import build_msh
from ris.identity.gate import ins_transmissible
from ris.identity.pid_segment import PidValues, patient_mailbox, pid_values
from ris.lifecycle import routing
from ris.lifecycle.routing import DistributionFlags, PlannedDelivery
from ris.site.settings import SiteSettings
from ris.store.models import Channel, DeliveryStatus, utcnow
from ris.store.reports import ReportBundle

log = logging.getLogger(__name__)
PAYLOAD_MARKER = "CDAPAYLOAD"


class Hl7RuleError(ValueError):
    """The message cannot be built from this input; the text names the field and the rule."""


class MatrixRefusal(Hl7RuleError):
    """The distribution flags are outside the MSSanté matrix and the site refuses such messages."""


@dataclass(frozen=True)
class Publication:
    """What one message to the PFI says: a validated version, its CDA, and what the PFI must relay."""

    bundle: ReportBundle
    cda: bytes
    action: Action
    control_id: str  # MSH-10: the hl7 delivery's idempotency key
    relayed: Sequence[PlannedDelivery]  # the deliveries routed through the PFI (DMP, MSSanté PS / patient)
    modif_conf_code: bool = False


@dataclass(frozen=True)
class Rendered:
    er7: str
    message_type: MessageType
    trigger: str
    flags: DistributionFlags
    ins_included: bool
    matrix_warning: str | None


def going(pub: Publication, channel: Channel) -> list[PlannedDelivery]:
    return [p for p in pub.relayed if p.channel is channel and p.status is DeliveryStatus.pending]


def distribution_flags(pub: Publication) -> DistributionFlags:
    modified = pub.modif_conf_code or pub.action in METADATA_UPDATES
    return routing.flags(list(pub.relayed), pub.bundle, modif_conf_code=modified)


def _check_input(pub: Publication) -> None:
    if pub.action not in ACTIONS:
        raise Hl7RuleError(f"action {pub.action!r}: must be one of {', '.join(ACTIONS)}")
    if not pub.cda.strip():
        raise Hl7RuleError(f"report {pub.bundle.report.id}: the CDA to carry in OBX-5 is empty")
    if pub.bundle.validator is None or not pub.bundle.validator.rpps:
        raise Hl7RuleError(
            f"report {pub.bundle.report.id}: PRT SB needs the validating radiologist with an RPPS "
            f"(validator {pub.bundle.version.validator_rpps!r} is not a known correspondent)"
        )
    if pub.action == "replace" and pub.bundle.previous is None:
        raise Hl7RuleError(
            f"report {pub.bundle.report.id} v{pub.bundle.version.version}: a replacement needs a previous "
            "version (TXA-13 = replaced document)"
        )
    if not pub.control_id or len(pub.control_id) > 199:
        raise Hl7RuleError("MSH-10: the message control id must be 1 to 199 characters")


def _set(segment: Segment, field: str, values: str | Sequence[str]) -> None:
    """Assign an ER7 value, or several repetitions, to a field."""
    if isinstance(values, str):
        values = [values]
    setattr(segment, field, values[0])
    for value in values[1:]:
        segment.add_field(field).value = value


def render(pub: Publication, settings: SiteSettings, *, now: dt.datetime | None = None) -> Rendered:
    """The ER7 message (segments separated by CR) for this publication and site."""
    _check_input(pub)
    bundle, site, routing_ = pub.bundle, settings.facility, settings.hl7
    kind: MessageType = routing_.message_type
    codes = ACTION_CODES[pub.action]
    flags = distribution_flags(pub)
    violation = matrix_violation(flags, routing_.agreed_combinations)
    if violation and routing_.matrix_check == "reject":
        raise MatrixRefusal(f"report {bundle.report.id} v{bundle.version.version}: {violation}")
    if violation:
        log.warning("report %s v%s: %s", bundle.report.id, bundle.version.version, violation)
    when = now or utcnow()
    tz = settings.timezone

    version = VERSION[kind]
    structure = "ORU_R01" if kind == "ORU" else "MDM_T02"
    trigger = "R01" if kind == "ORU" else codes.mdm_trigger
    message = Message(structure, version=version, validation_level=VALIDATION_LEVEL.TOLERANT)
    msh = build_msh(
        sending_application=escape(routing_.sending_application),
        sending_facility=site.finess_geo,
        receiving_application=escape(routing_.receiving_application),
        receiving_facility=escape(routing_.receiving_facility),
        when=when,
        tz=tz,
        message_type=f"{kind}^{trigger}^{structure}",
        control_id=pub.control_id,
        processing_id=routing_.processing_id,
        version=version,
        profile=PROFILE,
    )
    message.msh = parse_segment(msh, version=version, validation_level=VALIDATION_LEVEL.TOLERANT)

    # hl7apy attaches a segment when its first field is set: fill them strictly in message order.
    pid_fields = pid_values(bundle.patient, ipp_namespace=routing_.sending_application, facility_oid=site.oid)
    if kind == "ORU":
        result = message.add_group("ORU_R01_PATIENT_RESULT")
        patient_group = result.add_group("ORU_R01_PATIENT")
        _fill_pid(patient_group.pid, pid_fields)
        _fill_pv1(patient_group.add_group("ORU_R01_VISIT").pv1, pub, settings)
        order = result.add_group("ORU_R01_ORDER_OBSERVATION")
        _fill_order(order.orc, order.obr, pub, settings)

        def add_observation() -> Group:
            return order.add_group("ORU_R01_OBSERVATION")

        value_type, text_subtype = "CE", "TEXT"
    else:
        evn = message.evn
        evn.evn_2 = dtm(when, tz)
        evn.evn_6 = dtm(bundle.version.validated_at, tz)
        _fill_pid(message.pid, pid_fields)
        _fill_pv1(message.pv1, pub, settings)
        common = message.add_group("MDM_T02_COMMON_ORDER")
        _fill_order(common.orc, common.obr, pub, settings)
        _fill_txa(message.txa, pub, tz)

        def add_observation() -> Group:
            return message.add_group("MDM_T02_OBSERVATION")

        value_type, text_subtype = "CWE", "text"

    document = add_observation().obx
    document.obx_1 = "1"
    document.obx_2 = "ED"
    document.obx_3 = DOCUMENT_TYPE
    # hl7apy would parse and keep a copy of a payload of several MB: it holds a marker, and the base64
    # goes into the final text.
    document.obx_5 = f"^{text_subtype}^XML^Base64^{PAYLOAD_MARKER}"
    document.obx_11 = codes.obx_11

    rows = [(code, label, v == "Y") for (code, label), v in zip(METADATA, flag_values(flags), strict=True)]
    rows.append((*ACK_RECEPTION, routing_.request_receipts))
    rows.append((*ACK_LECTURE_MSS, routing_.request_read_receipts))
    for number, (code, label, flag) in enumerate(rows, start=2):
        group = add_observation()
        obx = group.obx
        obx.obx_1 = str(number)
        obx.obx_2 = value_type
        obx.obx_3 = f"{code}^{label}^{METADATA_SYSTEM}"
        obx.obx_5 = f"{yes_no(flag)}^^{YES_NO_SYSTEM}"
        obx.obx_11 = "F"
        if code == "DESTMSSANTEPAT" and flag:
            # NTE-4 FIN: the patient cannot reply (the PFI sets X-MSS-MES: FIN, TRANS IG mapping-mss.md).
            nte = group.add_segment("NTE")
            nte.nte_1 = "1"
            nte.nte_4 = "FIN"

    prt_lines = _participants(pub, settings)
    lines = message.to_er7().split("\r")
    first_obx = next(i for i, line in enumerate(lines) if line.startswith("OBX|"))
    payload = base64.b64encode(pub.cda).decode("ascii")
    lines[first_obx] = lines[first_obx].replace(PAYLOAD_MARKER, payload, 1)
    lines[first_obx + 1 : first_obx + 1] = prt_lines
    return Rendered(
        er7="\r".join(lines),
        message_type=kind,
        trigger=trigger,
        flags=flags,
        ins_included=ins_transmissible(bundle.patient),
        matrix_warning=violation,
    )


def _participants(pub: Publication, settings: SiteSettings) -> list[str]:
    """SB, one RCT per MSSanté recipient still to be served, the patient's RCT, then REPLY."""
    bundle = pub.bundle
    lines = [
        participants.sender(
            bundle.validator, facility_name=settings.facility.name, finess_geo=settings.facility.finess_geo
        )
    ]
    people = {routing.recipient_key(p): p for p in routing.ps_recipients(bundle)}
    for planned in going(pub, Channel.mss_ps):
        person = people.get(planned.recipient)
        if person is None or not person.mss_address:
            raise Hl7RuleError(
                f"report {bundle.report.id}: MSSanté delivery {planned.recipient!r} matches no recipient "
                "of the report with an MSSanté address"
            )
        lines.append(participants.ps_recipient(person, person.mss_address))
    mailbox = patient_mailbox(bundle.patient)
    if going(pub, Channel.mss_patient) and mailbox is not None:
        lines.append(participants.patient_recipient(bundle.patient, mailbox))
    if settings.return_address:
        lines.append(participants.reply_to(settings.return_address))
    return lines


def _fill_pid(pid: Segment, values: PidValues) -> None:
    _set(pid, "pid_3", values.pid_3)
    _set(pid, "pid_5", values.pid_5)
    pid.pid_7 = values.pid_7
    pid.pid_8 = values.pid_8
    _set(pid, "pid_11", values.pid_11)
    pid.pid_31 = values.pid_31
    _set(pid, "pid_32", values.pid_32)


def _fill_pv1(pv1: Segment, pub: Publication, settings: SiteSettings) -> None:
    exam, tz = pub.bundle.exam, settings.timezone
    pv1.pv1_1 = "1"
    pv1.pv1_2 = exam.encounter_class
    # PV1-19 is required for E/I/O/R encounters; an imaging centre without visits uses the accession.
    visit = exam.visit_number or exam.accession_number
    namespace = escape(settings.hl7.sending_application)
    pv1.pv1_19 = f"{escape(visit)}^^^{namespace}&{settings.facility.oid}&ISO^VN"
    pv1.pv1_44 = dtm(exam.started_at, tz)


def _fill_order(orc: Segment, obr: Segment, pub: Publication, settings: SiteSettings) -> None:
    exam, namespace = pub.bundle.exam, escape(settings.hl7.sending_application)
    placer = f"{escape(exam.order_id)}^{namespace}"
    filler = f"{escape(exam.accession_number)}^{namespace}"
    orc.orc_1 = ACTION_CODES[pub.action].orc_1
    orc.orc_2 = placer
    orc.orc_3 = filler
    obr.obr_1 = "1"
    obr.obr_2 = placer
    obr.obr_3 = filler
    obr.obr_4 = DOCUMENT_TYPE
    obr.obr_7 = dtm(exam.started_at, settings.timezone)


def _fill_txa(txa: Segment, pub: Publication, tz: str) -> None:
    bundle = pub.bundle
    txa.txa_1 = "1"
    txa.txa_2 = DOCUMENT_TYPE_CODE
    txa.txa_3 = "TEXT"
    txa.txa_4 = dtm(bundle.version.validated_at, tz)
    txa.txa_12 = bundle.version.document_id  # root-only OID: the DMP refuses OID^extension
    if pub.action in METADATA_UPDATES:  # the document whose metadata change is the document itself
        txa.txa_13 = bundle.version.document_id
    elif bundle.previous is not None and pub.action in ("replace", "delete"):
        txa.txa_13 = bundle.previous.document_id
    txa.txa_17 = "AU"
    txa.txa_22 = participants.national_ps_id(bundle.validator)
