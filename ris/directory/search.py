"""Searching the imported directory for a correspondent and their MSSanté addresses (RIS.ANN.05), by the
criteria of the MSSanté client reference (Référentiel socle MSSanté #2: identifier RPPS, or name with
optional given name and place of practice). Names compare without accents, case, apostrophes or hyphens;
a name or given name matches by its beginning."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from ris.directory.extraction import RPPS_RE, search_key
from ris.store.models import DirectoryMailbox, DirectoryPerson

MAX_RESULTS = 50


class SearchRefused(ValueError):
    pass


def _entry(session: Session, person: DirectoryPerson) -> dict[str, Any]:
    boxes = session.exec(
        select(DirectoryMailbox)
        .where(DirectoryMailbox.rpps == person.rpps)
        .order_by(DirectoryMailbox.address)
    ).all()
    return {
        "rpps": person.rpps,
        "civility": person.civility,
        "family": person.family,
        "given": person.given,
        "profession": {"code": person.profession_code, "label": person.profession},
        "specialty": {"code": person.specialty_code, "label": person.specialty},
        "structures": person.structures,
        "mss_addresses": [
            {"address": b.address, "kind": b.kind, "organisation": b.organisation} for b in boxes
        ],
    }


def _in_city(person: DirectoryPerson, city: str) -> bool:
    wanted = search_key(city)
    return any(
        search_key(s.get("city")) == wanted or s.get("postal_code", "").startswith(city.strip())
        for s in person.structures
    )


def find(
    session: Session,
    *,
    rpps: str | None = None,
    name: str | None = None,
    given: str | None = None,
    city: str | None = None,
) -> list[dict[str, Any]]:
    """The matching professionals (at most MAX_RESULTS), with structures and MSSanté addresses."""
    if rpps is not None:
        if not RPPS_RE.match(rpps.strip()):
            raise SearchRefused(f"--rpps {rpps!r}: an RPPS number is 11 digits")
        person = session.exec(select(DirectoryPerson).where(DirectoryPerson.rpps == rpps.strip())).first()
        return [_entry(session, person)] if person else []
    family_key = search_key(name)
    if not family_key:
        raise SearchRefused("--name: give a name (or --rpps)")
    query = select(DirectoryPerson).where(DirectoryPerson.family_key.startswith(family_key, autoescape=True))
    given_key = search_key(given)
    if given_key:
        query = query.where(DirectoryPerson.given_key.startswith(given_key, autoescape=True))
    found = []
    for person in session.exec(query.order_by(DirectoryPerson.family_key, DirectoryPerson.given_key)):
        if city and not _in_city(person, city):
            continue
        found.append(_entry(session, person))
        if len(found) >= MAX_RESULTS:
            break
    return found
