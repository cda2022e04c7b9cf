"""INS rule 31 (RIS.INS.51): the partners that received health data with the INS, kept per patient."""

from __future__ import annotations

from sqlmodel import Session

from ris.store import audit
from ris.store.models import Channel, ExchangeChannel, PartnerExchange, Patient


def record_partner_exchange(
    session: Session,
    patient: Patient | int,
    partner: str,
    channel: Channel | ExchangeChannel | str,
    document_id: str | None,
) -> PartnerExchange:
    """Rule 31 (RIS.INS.51): health data with the INS went to `partner`; every sending channel, and every
    contextual call, calls it in the unit of work that records the exchange."""
    patient_id = patient if isinstance(patient, int) else patient.id
    how = ExchangeChannel(channel)
    row = PartnerExchange(patient_id=patient_id, partner=partner[:200], channel=how, document_id=document_id)
    session.add(row)
    audit.record(
        session,
        actor="engine",
        action="ins.partner_exchange",
        object_type="patient",
        object_id=patient_id,
        partner=partner[:200],
        channel=how.value,
        document_id=document_id,
    )
    session.flush()
    return row
