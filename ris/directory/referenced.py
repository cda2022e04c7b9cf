"""The RIS's own users and correspondents kept in step with the directory (RIS.ANN.02–03). The radiologists
of the site (users) and the requesters and recipients (correspondents) are all `Correspondent` rows keyed
by RPPS: created from a directory entry on request, updated by every import that reads their RPPS."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from ris.store import audit
from ris.store.models import Correspondent, DirectoryMailbox, DirectoryPerson

ACTOR = "annuaire-sante"
TITLES = {"DR": "Dr", "PR": "Pr"}  # Code civilité d'exercice; others (M, MME...) keep the RIS's title


class NotInDirectory(LookupError):
    pass


def directory_address(session: Session, rpps: str) -> str | None:
    """The professional's personal MSSanté mailbox (Type de BAL PER), the first by address if several."""
    return session.exec(
        select(DirectoryMailbox.address)
        .where(DirectoryMailbox.rpps == rpps, DirectoryMailbox.kind == "PER")
        .order_by(DirectoryMailbox.address)
    ).first()


def _identity(person: dict[str, Any], current_title: str | None) -> dict[str, Any]:
    return {
        "family": person["family"],
        "given": person["given"],
        "title": TITLES.get(person.get("civility") or "", current_title),
    }


def _apply(session: Session, row: Correspondent, values: dict[str, Any], action: str) -> bool:
    changed = sorted(key for key, value in values.items() if getattr(row, key) != value)
    if not changed:
        return False
    for key in changed:
        setattr(row, key, values[key])
    session.add(row)
    session.flush()
    # Field names only: the values stay in the tables.
    audit.record(
        session, actor=ACTOR, action=action, object_type="correspondent", object_id=row.id, fields=changed
    )
    return True


def refresh_correspondents(session: Session, persons: dict[str, dict[str, Any]]) -> int:
    """Update the correspondents whose RPPS is in this batch of the directory; the number changed."""
    rows = session.exec(select(Correspondent).where(Correspondent.rpps.in_(list(persons)))).all()
    return sum(
        _apply(session, row, _identity(persons[row.rpps], row.title), "correspondent.update") for row in rows
    )


def fill_missing_addresses(session: Session) -> int:
    """Correspondents without an MSSanté address get their directory one; the number filled."""
    rows = session.exec(
        select(Correspondent).where(Correspondent.rpps.is_not(None), Correspondent.mss_address.is_(None))
    ).all()
    filled = 0
    for row in rows:
        address = directory_address(session, row.rpps)
        if address:
            filled += _apply(session, row, {"mss_address": address}, "correspondent.update")
    return filled


def adopt(session: Session, rpps: str) -> tuple[Correspondent, bool]:
    """Create the correspondent of this RPPS from the directory, or update it; (row, created)."""
    person = session.exec(select(DirectoryPerson).where(DirectoryPerson.rpps == rpps)).first()
    if person is None:
        raise NotInDirectory(f"rpps: {rpps} is not in the imported directory (run `ris directory import`)")
    row = session.exec(select(Correspondent).where(Correspondent.rpps == rpps)).first()
    values = _identity(person.model_dump(), row.title if row else "Dr")
    first = person.structures[0] if person.structures else {}
    if row is None:
        row = Correspondent(
            rpps=rpps,
            **values,
            mss_address=directory_address(session, rpps),
            organisation=(first.get("name") or None),
            finess=(first.get("finess") or None),
        )
        session.add(row)
        session.flush()
        audit.record(
            session, actor=ACTOR, action="correspondent.create", object_type="correspondent", object_id=row.id
        )
        return row, True
    if row.mss_address is None:
        values["mss_address"] = directory_address(session, rpps)
    _apply(session, row, values, "correspondent.update")
    return row, False
