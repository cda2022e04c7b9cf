"""Manual MSSanté sending (RIS.MSS.20): a validated report sent to a professional the user chooses, for
example in a hospital whose PFI carries the automatic copies.

A request becomes one delivery per version and address: channel mss-ps, action `manual`, route direct, its
idempotency key minted once. It then leaves as every direct copy does (`tasks.mssante.send_mss`): the gates
evaluated again when it leaves, the Message-ID and ENVID of its key, its DSN and MDN read from the mailbox,
a failure retried with `ris delivery retry`. Asking again for the same version and address finds the same
delivery: nothing ever goes twice.

Who asked is recorded with the delivery, before the run that sends it starts: the user `ris mss send`
checked (a Pro Santé Connect login, or `--by` where the site allows it), whose run then carries only the
delivery's id, as `ris delivery retry` does with its requests (`ris.operations.retry`). A run started from
the Prefect UI with an address proves nobody: it is recorded as the UI
(`ris.operations.retry.UI_ACTOR`), and may send only to an address the imported directory lists.

The address is checked against the directory when it knows it: a mailbox it lists is named in the answer
and the audit; one it does not list is refused unless the user says it is unpublished (`unlisted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from ris.channels.mssante.message import PATIENT_DOMAIN
from ris.ids import delivery_key
from ris.lifecycle import routing
from ris.store import audit, deliveries
from ris.store import documents as stored_documents
from ris.store.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    DirectoryMailbox,
    DirectoryPerson,
    ReportStatus,
)
from ris.store.reports import get_report, load_bundle
from ris.text_rules import line_problem

MANUAL = "manual"  # Delivery.action of a manual send
MAX_ADDRESS = 254


class ManualSendRefused(ValueError):
    """A manual send that cannot be made: names the field and the rule; nothing was recorded."""


@dataclass(frozen=True)
class ManualSend:
    delivery_id: int
    report_id: str
    version: int
    address: str
    status: str  # pending: to send now; sent, acknowledged or read: it went already
    listed: str | None = None  # the mailbox's owner as the directory lists it, when it does


def check_address(to: str) -> str:
    """The professional's address, trimmed; refused when it cannot be an MSSanté address of a professional."""
    if problem := line_problem(to):  # it becomes the mail's To and the envelope's recipient
        raise ManualSendRefused(f"--to: {problem}")
    address = to.strip()
    local, _, domain = address.rpartition("@")
    if len(address) > MAX_ADDRESS or not local or "@" in local or " " in address or "." not in domain:
        raise ManualSendRefused(f"--to {address!r}: not a mail address")
    if domain.lower() == PATIENT_DOMAIN:
        raise ManualSendRefused(
            f"--to: {PATIENT_DOMAIN} is the patient's Mon espace santé mailbox, which gets the report "
            "automatically (RIS.MSS.22); a manual send goes to a professional (RIS.MSS.20)"
        )
    return address


def directory_owner(session: Session, address: str) -> str | None:
    """Who the imported directory says owns `address` (name and RPPS, or organisation), or None."""
    box = session.exec(
        select(DirectoryMailbox).where(sa.func.lower(DirectoryMailbox.address) == address.lower())
    ).first()
    if box is None:
        return None
    person = (
        session.exec(select(DirectoryPerson).where(DirectoryPerson.rpps == box.rpps)).first()
        if box.rpps
        else None
    )
    if person is not None:
        name = " ".join(p for p in (person.given, person.family) if p)
        return f"{name} (RPPS {person.rpps}, mailbox {box.kind})"
    return f"{box.organisation or 'an organisation'} (mailbox {box.kind})"


def _directory_imported(session: Session) -> bool:
    return session.exec(select(DirectoryMailbox.id).limit(1)).first() is not None


def _check_listed(session: Session, address: str, *, proven: bool, unlisted: bool) -> str | None:
    owner = directory_owner(session, address)
    if owner is not None:
        return owner
    if not proven:
        raise ManualSendRefused(
            f"to {address!r}: a run started from the Prefect UI sends only to an MSSanté address the "
            "imported directory lists (`ris directory find`); `ris mss send` sends to others, audited"
        )
    if _directory_imported(session) and not unlisted:
        raise ManualSendRefused(
            f"--to {address!r}: the imported directory lists no such MSSanté mailbox (check it with `ris "
            "directory find`); --unlisted sends it anyway, for a mailbox the directory does not publish"
        )
    return None


def _version(session: Session, report_id: str, version: int | None) -> int:
    report = get_report(session, report_id)
    if report.status is ReportStatus.deleted:
        raise ManualSendRefused(f"report {report_id} was deleted: nothing is sent any more")
    if report.version < 1:
        raise ManualSendRefused(f"report {report_id}: not validated yet, nothing to send")
    number = report.version if version is None else version
    if not 1 <= number <= report.version:
        raise ManualSendRefused(f"--version {number}: report {report_id} has versions 1 to {report.version}")
    if number < report.version:
        raise ManualSendRefused(
            f"--version {number}: replaced by version {report.version}, which is what a professional must "
            "get (leave --version out)"
        )
    return number


def request(
    session: Session,
    report_id: str,
    *,
    to: str,
    version: int | None,
    actor: str,
    proven: bool = True,
    unlisted: bool = False,
) -> ManualSend:
    """Record a manual send by `actor` (`proven`: checked by the CLI; otherwise the UI's) and return the
    delivery to send. Refused, recording nothing, when the report, the version, the address or the
    patient's choices do not allow it (ManualSendRefused, NotFound)."""
    address = check_address(to)
    number = _version(session, report_id, version)
    bundle = load_bundle(session, report_id, number)
    if blocked := routing.withheld_because(bundle, Channel.mss_ps):
        raise ManualSendRefused(f"report {report_id}: not sent to professionals: {blocked}")
    if stored_documents.find(session, report_id, number) is None:
        raise ManualSendRefused(
            f"report {report_id} v{number}: its documents are not built yet (its lifecycle run builds them); "
            f"send it once `ris report show {report_id}` lists its deliveries"
        )
    owner = _check_listed(session, address, proven=proven, unlisted=unlisted)
    row = deliveries.find(session, report_id, number, Channel.mss_ps, address, MANUAL)
    if row is not None and row.status is DeliveryStatus.failed:
        raise ManualSendRefused(
            f"delivery {row.id} (report {report_id} v{number} to {address}) failed: {row.reason}; send it "
            f"again with `ris delivery retry {row.id} --reason ...`"
        )
    asked = f"manual send asked by {actor}"
    if row is None:
        row = Delivery(
            report_id=report_id,
            version=number,
            action=MANUAL,
            channel=Channel.mss_ps,
            recipient=address,
            route="direct",
            status=DeliveryStatus.pending,
            idempotency_key=delivery_key(Channel.mss_ps),
        )
        session.add(row)
        deliveries.set_status(session, row, DeliveryStatus.pending, asked, actor=actor)
    elif row.status is DeliveryStatus.blocked:  # its gate closed when it left, and is open again
        deliveries.set_status(session, row, DeliveryStatus.pending, asked, actor=actor)
    audit.record(
        session,
        actor=actor,
        action="mss.manual_send",
        object_type="delivery",
        object_id=row.id,
        report_id=report_id,
        version=number,
        to=address,
        directory=owner or "not listed",
        proven=proven,
    )
    return ManualSend(row.id, report_id, number, address, row.status.value, owner)


def to_send(session: Session, delivery_id: int, report_id: str | None = None) -> ManualSend:
    """The manual send `ris mss send` recorded, for the run that sends it (of `report_id` when given)."""
    row = session.get(Delivery, delivery_id)
    if row is None or row.action != MANUAL:
        raise ManualSendRefused(f"delivery {delivery_id}: not a manual MSSanté send (`ris mss send`)")
    if report_id is not None and row.report_id != report_id:
        raise ManualSendRefused(f"delivery {delivery_id}: a send of report {row.report_id}, not {report_id}")
    if row.status is DeliveryStatus.failed:
        raise ManualSendRefused(
            f"delivery {delivery_id} failed: {row.reason}; send it again with `ris delivery retry "
            f"{delivery_id} --reason ...`"
        )
    return ManualSend(row.id, row.report_id, row.version, row.recipient, row.status.value)
