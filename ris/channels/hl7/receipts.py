"""ZAM business acknowledgements from the PFI (hl7v2-transport.md §8) and their effect on deliveries.

Z01 (DMP receipt), Z02 (MSSanté delivery notification), Z03 (MSSanté read notification). OBX-4 of the
first OBX is the MSH-10 we sent, i.e. the hl7 delivery's idempotency key: it leads to the report version
whose relayed deliveries (route "pfi") the receipt updates. A resend (`initial-r1`: the copies whose
receipt failed, sent again by an administrator's retry with a new MSH-10, `ris.retry_relay`) speaks for
the copies of the action it repeats.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from ris.channels.hl7.vocabulary import ZAM_TRIGGERS
from ris.hl7v2.ack_reader import AckError, read_errors
from ris.hl7v2.er7 import segments
from ris.identity.pid_segment import PATIENT_MAIL_DOMAIN
from ris.retry_relay import base_action
from ris.routing import PFI
from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus, Exam, Patient, Report

EXPECTED_OBX = {
    "Z01": "ACK_RECEPTION_DMP",
    "Z02": "ACK_RECEPTION_MSS",
    "Z03": "ACK_LECTURE_MSS",
}
# Forward-only progress: a late Z02 never turns a read delivery back into acknowledged.
RANK = {
    DeliveryStatus.pending: 0,
    DeliveryStatus.sent: 1,
    DeliveryStatus.acknowledged: 2,
    DeliveryStatus.read: 3,
}


class ZamFormatError(ValueError):
    """The ZAM lacks what the volet requires; the text names the field."""


class UnknownCorrelation(LookupError):
    """The receipt points at no message or recipient of ours."""


@dataclass(frozen=True)
class Receipt:
    trigger: str  # Z01 / Z02 / Z03
    original_control_id: str  # OBX-4 of the first OBX
    positive: bool  # OBX-5.1 == Y
    address: str | None  # Z02 / Z03: OBX-5.4 of the second OBX
    errors: tuple[AckError, ...]

    def error_codes(self) -> str:
        return ", ".join(
            f"{e.application} {e.application_label}".strip() for e in self.errors if e.application
        )


def parse_zam(text: str) -> Receipt:
    items = segments(text)
    if not items or items[0].name != "MSH":
        raise ZamFormatError("MSH: the message does not start with an MSH segment")
    msh = items[0]
    if msh.component(9, 1) != "ZAM" or msh.component(9, 2) not in ZAM_TRIGGERS:
        raise ZamFormatError(f"MSH-9 {msh.field(9)!r}: not a ZAM^Z01 / Z02 / Z03 business acknowledgement")
    trigger = msh.component(9, 2)
    obx = [s for s in items if s.name == "OBX"]
    if not obx:
        raise ZamFormatError("OBX: a ZAM carries at least one OBX")
    first = obx[0]
    if first.component(3, 1) != EXPECTED_OBX[trigger]:
        raise ZamFormatError(
            f"OBX-3: {trigger} must carry {EXPECTED_OBX[trigger]}, not {first.component(3, 1)!r}"
        )
    original = first.field(4)
    if not original:
        raise ZamFormatError("OBX-4: the MSH-10 of the acknowledged message is missing")
    value = first.component(5, 1)
    if value not in ("Y", "N"):
        raise ZamFormatError(f"OBX-5: expected Y or N, got {value!r}")
    address = None
    if trigger in ("Z02", "Z03"):
        if len(obx) < 2 or not obx[1].component(5, 4):
            raise ZamFormatError(f"OBX-5.4 of the second OBX: {trigger} must name the MSSanté address")
        address = obx[1].component(5, 4)
    return Receipt(trigger, original, value == "Y", address, read_errors(items))


def _patient_address(session: Session, report_id: str) -> str | None:
    report = session.get(Report, report_id)
    exam = session.get(Exam, report.exam_id) if report else None
    patient = session.get(Patient, exam.patient_id) if exam else None
    if patient is None or not patient.ins_matricule:
        return None
    return f"{patient.ins_matricule}@{PATIENT_MAIL_DOMAIN}"


def target_delivery(session: Session, receipt: Receipt) -> Delivery:
    hl7 = deliveries.by_idempotency_key(session, receipt.original_control_id)
    if hl7 is None or hl7.channel is not Channel.hl7:
        raise UnknownCorrelation("OBX-4: no message sent to the PFI has this MSH-10")
    if hl7.action == "delete":  # receipts of a deletion: noted on the deletion message's own delivery
        return hl7
    relayed = [
        d
        for d in deliveries.for_version(session, hl7.report_id, hl7.version)
        if d.route == PFI and d.channel is not Channel.hl7 and d.action == base_action(hl7.action)
    ]
    if receipt.trigger == "Z01":
        wanted = [d for d in relayed if d.channel is Channel.dmp]
    elif (
        receipt.address
        and receipt.address.lower() == (_patient_address(session, hl7.report_id) or "").lower()
    ):
        wanted = [d for d in relayed if d.channel is Channel.mss_patient]
    else:
        address = (receipt.address or "").lower()
        wanted = [d for d in relayed if d.channel is Channel.mss_ps and d.recipient.lower() == address]
    if not wanted:
        raise UnknownCorrelation(f"{receipt.trigger}: no delivery relayed by the PFI matches this receipt")
    return wanted[0]


def outcome(receipt: Receipt) -> tuple[DeliveryStatus | None, str]:
    """The status a receipt leads to (None: timeline note only) and the detail to record."""
    codes = receipt.error_codes()
    if receipt.trigger == "Z01":
        if receipt.positive and not receipt.errors:
            return DeliveryStatus.acknowledged, "ZAM Z01: received by the DMP"
        return DeliveryStatus.failed, f"ZAM Z01: DMP refused the document ({codes or 'no DMPERRORCODE'})"
    if receipt.trigger == "Z02":
        if receipt.positive:
            return DeliveryStatus.acknowledged, "ZAM Z02: delivered to the MSSanté mailbox"
        return DeliveryStatus.failed, f"ZAM Z02: MSSanté delivery failed (SMTPERRORCODE {codes or 'none'})"
    if receipt.positive:
        return DeliveryStatus.read, "ZAM Z03: read by the recipient"
    return None, "ZAM Z03: negative read notification"


def apply_receipt(session: Session, receipt: Receipt, *, actor: str = "pfi") -> Delivery:
    """Update the delivery the receipt is about; raises UnknownCorrelation and changes nothing otherwise."""
    delivery = target_delivery(session, receipt)
    # The worker recording the PFI's ACK may update the same row at the same time (PostgreSQL, several
    # processes): lock it and decide on its committed status.
    session.refresh(delivery, with_for_update=True)
    status, detail = outcome(receipt)
    if (
        delivery.channel is Channel.hl7
    ):  # a deletion's receipt: timeline note, the deletion stays acknowledged
        status = None
    if status is None:
        if delivery.status is not DeliveryStatus.failed:  # a note must not overwrite a failure reason
            deliveries.set_status(session, delivery, delivery.status, detail, actor=actor)
    elif status is DeliveryStatus.failed or RANK.get(status, 0) > RANK.get(delivery.status, -1):
        deliveries.set_status(session, delivery, status, detail, actor=actor)
    return delivery
