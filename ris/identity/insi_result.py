"""The INSi RESULTAT document (ins.md §7.4): parsing, return codes in the user's terms, rules 11 and 12.

What the national service sends is the reference, not our copy of its schema: elements are found by name
wherever CNAM puts them (CNDA test 2.04 sends an INSHISTO's DateDeb and DateFin before its IdIndividu,
our XSD after its OID), and an answer missing what the engine needs is "INSi answer unreadable", never a
traceback.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from lxml import etree

from ris.identity.errors import IdentityRuleError
from ris.identity.nir import matricule_problem

NS_RESULTAT = "http://www.cnamts.fr/INSiResultat"
_R = f"{{{NS_RESULTAT}}}"
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class Outcome(StrEnum):
    found = "found"
    not_found = "not_found"
    several = "several"


OUTCOMES = {"00": Outcome.found, "01": Outcome.not_found, "02": Outcome.several}
ADVICE = {
    Outcome.found: "One identity found: compare it with the patient's traits before accepting it.",
    Outcome.not_found: "No identity found: check the traits or search again with another birth given name.",
    Outcome.several: "Several identities match: add the other birth given names, then the birth place code.",
}


@dataclass(frozen=True)
class InsRef:
    """INSACTIF or one INSHISTO entry."""

    matricule: str  # 15 characters: NumIdentifiant + Cle
    oid: str
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class InsiIdentity:
    """An identity returned with CR 00, already checked against rules 11 and 12."""

    ins: InsRef
    birth_name: str
    given_names: str  # ListePrenom, space-separated
    sex: str
    birth_date: dt.date
    birth_place_code: str | None
    history: list[InsRef] = field(default_factory=list)

    @property
    def first_given_name(self) -> str:
        return self.given_names.split()[0]

    @property
    def key_warning(self) -> str | None:
        """Public test data hold keys that do not verify (ins.md §5): reported, not refused (open point)."""
        return matricule_problem(self.ins.matricule)


@dataclass(frozen=True)
class InsiResult:
    code: str
    label: str
    identity: InsiIdentity | None

    @property
    def outcome(self) -> Outcome | None:
        """The search outcome; None for a verification's code (its contract reads it)."""
        return OUTCOMES.get(self.code)

    @property
    def advice(self) -> str:
        return ADVICE.get(self.outcome, "")

    def summary(self) -> dict:
        """JSON-ready form stored in InsiExchange (rule 39)."""
        outcome = self.outcome.value if self.outcome else None
        data: dict = {"code": self.code, "label": self.label, "outcome": outcome}
        if self.identity is not None:
            ident = asdict(self.identity)
            ident["birth_date"] = self.identity.birth_date.isoformat()
            data["identity"] = ident
        return data


class InsiResponseRefused(IdentityRuleError):
    """An INSi answer that must not be imported (rules 11 and 12)."""


class InsiUnreadable(ValueError):
    """An INSi answer the engine cannot read (not SOAP, no RESULTAT, a part missing, an unknown code):
    the call and the answer are traced; nothing is taken from it."""

    def __init__(self, why: str) -> None:
        super().__init__(f"INSi answer unreadable: {why}")


def _text(el: etree._Element | None, name: str) -> str:
    if el is None:
        return ""
    found = el.find(_R + name)
    return (found.text or "").strip() if found is not None else ""


def _ins_ref(el: etree._Element | None, where: str) -> InsRef:
    ident = el.find(_R + "IdIndividu") if el is not None else None
    if ident is None or not _text(ident, "NumIdentifiant") or not _text(el, "OID"):
        raise InsiUnreadable(f"{where}: IdIndividu/NumIdentifiant and OID are required")
    return InsRef(
        matricule=_text(ident, "NumIdentifiant") + _text(ident, "Cle"),
        oid=_text(el, "OID"),
        start=_text(el, "DateDeb") or None,
        end=_text(el, "DateFin") or None,
    )


def check_birth_date(value: str) -> dt.date:
    """Rule 11: an INSi birth date with 00 as day and/or month is refused (the XSD lets it through)."""
    m = _DATE.match(value)
    if not m:
        raise InsiResponseRefused("birth_date", f"INSi date {value!r} is not AAAA-MM-JJ", "INS rule 11")
    year, month, day = m.groups()
    if month == "00" or day == "00":
        raise InsiResponseRefused("birth_date", "day and month must not be 00", "INS rule 11")
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError as exc:
        raise InsiResponseRefused("birth_date", f"{value!r} is not a calendar date", "INS rule 11") from exc


def parse_resultat(resultat: etree._Element, codes: Iterable[str] = OUTCOMES) -> InsiResult:
    """Read a RESULTAT element whose CodeCR is one of `codes` (the searches' by default); its INDIVIDU, when
    there is one, is the identity INSi returned. A part missing: InsiUnreadable; an identity breaking rule
    11 or 12: InsiResponseRefused."""
    cr = resultat.find(_R + "CR")
    code, label = _text(cr, "CodeCR"), _text(cr, "LibelleCR")
    if code not in codes:
        raise InsiUnreadable(f"CR/CodeCR {code!r} is not a code of this operation ({', '.join(codes)})")
    individu = resultat.find(_R + "INDIVIDU")
    if individu is None or (code in OUTCOMES and code != "00"):
        return InsiResult(code, label, None)
    tiq = individu.find(_R + "TIQ")
    if tiq is None:
        raise InsiUnreadable("INDIVIDU without TIQ")
    for name, field_ in (("NomNaissance", "birth_name"), ("ListePrenom", "given_names"), ("Sexe", "sex")):
        if not _text(tiq, name):
            raise InsiResponseRefused(field_, "empty in the INSi answer", "INS rule 12")
    identity = InsiIdentity(
        ins=_ins_ref(individu.find(_R + "INSACTIF"), "INSACTIF"),
        birth_name=_text(tiq, "NomNaissance"),
        given_names=" ".join(_text(tiq, "ListePrenom").split()),
        sex=_text(tiq, "Sexe"),
        birth_date=check_birth_date(_text(tiq, "DateNaissance")),
        birth_place_code=_text(tiq, "LieuNaissance") or None,
        history=[_ins_ref(h, "INSHISTO") for h in individu.findall(_R + "INSHISTO")],
    )
    return InsiResult(code, label, identity)
