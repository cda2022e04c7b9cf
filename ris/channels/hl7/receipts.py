"""ZAM business acknowledgements from the PFI (hl7v2-transport.md §8) and their effect on deliveries.

Z01 (DMP receipt), Z02 (MSSanté delivery notification), Z03 (MSSanté read notification). OBX-4 of the
first OBX is the MSH-10 we sent, i.e. the hl7 delivery's idempotency key: it leads to the report version
whose relayed deliveries (route "pfi") the receipt updates. A resend (`initial-r1`: the copies whose
receipt failed, sent again by an administrator's retry with a new MSH-10, `ris.operations.retry_relay`)
speaks for the copies of the action it repeats (`ris.channels.hl7.publish.relayed`).

A receipt moves a copy only as the status machine lets a receipt (`ris.store.delivery_states`): forward,
from a copy that was sent. Anything else is refused (`ReceiptRefused`, the text naming the rule) and the
copy stays as it was. A receipt applies once to a copy, per kind and message it names, whatever its own
MSH-10 (`AppliedReceipt`): a replay under a new control id changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from ris.channels.hl7 import publish
from ris.channels.hl7.vocabulary import ZAM_TRIGGERS
from ris.hl7v2.ack_reader import AckError, read_errors
from ris.hl7v2.er7 import segments
from ris.identity.pid_segment import PATIENT_MAIL_DOMAIN
from ris.store import deliveries, delivery_states
from ris.store.models import AppliedReceipt, Channel, Delivery, DeliveryStatus, Exam, Patient, Report

EXPECTED_OBX = {
    "Z01": "ACK_RECEPTION_DMP",
    "Z02": "ACK_RECEPTION_MSS",
    "Z03": "ACK_LECTURE_MSS",
}


class ZamFormatError(ValueError):
    """The ZAM lacks what the volet requires; the text names the field."""


class UnknownCorrelation(LookupError):
    """The receipt points at no message or recipient of ours."""


class ReceiptRefused(ValueError):
    """The receipt may not change the copy it is about; the text names the rule. `condition`: HL7 table
    0357 (205: applied already, 207: a rule of the status machine)."""

    def __init__(self, text: str, condition: str = "207") -> None:
        super().__init__(text)
        self.condition = condition


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


@dataclass(frozen=True)
class Target:
    """What a receipt is about: the message it names (OBX-4) and the copy it speaks for (the message
    itself for a deletion's receipt)."""

    message: Delivery
    copy: Delivery


def target_delivery(session: Session, receipt: Receipt) -> Target:
    hl7 = deliveries.by_idempotency_key(session, receipt.original_control_id)
    if hl7 is None or hl7.channel is not Channel.hl7:
        raise UnknownCorrelation("OBX-4: no message sent to the PFI has this MSH-10")
    if hl7.action == "delete":  # receipts of a deletion: noted on the deletion message's own delivery
        return Target(hl7, hl7)
    relayed = publish.relayed(session, hl7)
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
    return Target(hl7, wanted[0])


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


def _as_sent(target: Target) -> DeliveryStatus:
    """The copy's status as a receipt sees it. A copy still pending in a message that has left (sent at
    least once, the PFI's ACK not recorded yet: the PFI may send its ZAM before we record its ACK) was
    sent; one waiting for a message not sent yet was not."""
    copy, message = target.copy, target.message
    in_flight = message.status is DeliveryStatus.pending and message.attempts >= 1
    if copy is not message and copy.status is DeliveryStatus.pending and in_flight:
        return DeliveryStatus.sent
    return copy.status


def _applied_before(session: Session, receipt: Receipt, copy: Delivery) -> AppliedReceipt | None:
    stmt = select(AppliedReceipt).where(
        AppliedReceipt.delivery_id == copy.id,
        AppliedReceipt.kind == receipt.trigger,
        AppliedReceipt.message_key == receipt.original_control_id,
    )
    return session.exec(stmt).first()


def apply_receipt(
    session: Session, receipt: Receipt, *, inbound_id: int | None = None, actor: str = "pfi"
) -> Delivery:
    """Update the copy the receipt is about, as the status machine lets a receipt; raises
    UnknownCorrelation or ReceiptRefused, before writing anything, when it may not. `inbound_id`: the
    stored message that carried it."""
    target = target_delivery(session, receipt)
    # The worker recording the PFI's ACK may update the same rows at the same time (PostgreSQL, several
    # processes): lock them in its order (the message, then its copies) and decide on committed statuses.
    session.refresh(target.message, with_for_update=True)
    copy = target.copy
    if copy is not target.message:
        session.refresh(copy, with_for_update=True)
    where = f"OBX-4 {receipt.original_control_id}: delivery {copy.id} ({copy.channel.value})"
    if earlier := _applied_before(session, receipt, copy):
        raise ReceiptRefused(
            f"{where}: a ZAM {receipt.trigger} about this message was applied to it on "
            f"{earlier.applied_at:%Y-%m-%d %H:%M:%S} UTC; a receipt applies once, whatever its MSH-10",
            "205",
        )
    status, detail = outcome(receipt)
    if copy.channel is Channel.hl7:  # a deletion's receipt: timeline note, the deletion stays acknowledged
        status = None
    seen = _as_sent(target)
    if why := delivery_states.receipt_refusal(seen, status):
        raise ReceiptRefused(f"{where} {why}")
    session.add(
        AppliedReceipt(
            delivery_id=copy.id,
            kind=receipt.trigger,
            message_key=receipt.original_control_id,
            inbound_message_id=inbound_id,
        )
    )
    if delivery_states.receipt_moves(seen, status):
        deliveries.set_status(session, copy, status, detail, actor=actor)
    elif status is None:
        deliveries.set_status(session, copy, copy.status, detail, actor=actor)  # a note on the timeline
    return copy
