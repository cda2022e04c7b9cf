"""Test identities of the INSi sandbox (ins.md §13) and the matching a teleservice would do.

Answers follow the CNAM test cases, in the forms CNAM sends them: historical INS with their dates placed
before IdIndividu (CNDA test 2.04), a NIA under its own OID (2.05), Corsican birth places (2A, 2B). The
sandbox computes keys itself (it never imports `ris`): a peer sharing our code would share our bugs."""

from __future__ import annotations

from dataclasses import dataclass, field

OID_NIR = "1.2.250.1.213.1.4.8"
OID_NIA = "1.2.250.1.213.1.4.9"
OID_TEST = "1.2.250.1.213.1.4.10"


def key(n13: str) -> str:
    digits = n13[:5] + {"2A": "19", "2B": "18"}.get(n13[5:7], n13[5:7]) + n13[7:]
    return f"{97 - int(digits) % 97:02d}"


@dataclass(frozen=True)
class Historical:
    """An INSHISTO entry; `dates_first`: DateDeb / DateFin before IdIndividu, as CNAM sends them in CNDA
    test 2.04 (its XSD puts them after OID: an answer in CNAM's order does not validate against it)."""

    nir13: str
    oid: str = OID_NIR
    start: str | None = None
    end: str | None = None
    dates_first: bool = False


@dataclass(frozen=True)
class Person:
    birth_name: str
    given_names: str
    sex: str
    birth_date: str  # as INSi returns it; may hold 00 (DateLunaire)
    birth_place: str
    nir13: str
    oid: str = OID_NIR
    history: tuple[Historical, ...] = ()
    returned_name: str | None = None  # what TIQ/NomNaissance says, when it differs (empty-name case)
    cle: str = field(default="")

    @property
    def in_cnam_order(self) -> bool:
        """Whether the answer about this person is written as CNAM sends it, not as our XSD orders it."""
        return any(h.dates_first for h in self.history)

    def key(self) -> str:
        return self.cle or key(self.nir13)

    def matches_date(self, asked: str) -> bool:
        if self.birth_date == asked:
            return True
        mine, theirs = self.birth_date.split("-"), asked.split("-")
        return len(theirs) == 3 and all(m == "00" or m == t for m, t in zip(mine, theirs, strict=True))


PERSONS: list[Person] = [
    Person("PAT-TROIS", "DOMINIQUE MARIE-LOUISE", "F", "1979-03-28", "63220", "2790351215189", OID_TEST),
    Person("ADRUN", "ZOE", "F", "1975-12-31", "63220", "2751263220749"),
    Person("ADRTROIS", "DOMINIQUE", "F", "1997-02-26", "2A020", "297022A020778"),
    Person("ADRTROIS", "TOUSSAINT", "M", "1960-01-01", "2B020", "160012B020777"),
    Person(
        "ECETINSI",
        "PIERRE-ALAIN MURIEL FLORIANT",
        "M",
        "2009-07-14",
        "63220",
        "1090763220834",
        # CNDA test 2.04 as CNAM answers it: the first historical INS dated, its dates first.
        history=(
            Historical("2090763220834", start="2019-03-01", end="2019-02-28", dates_first=True),
            Historical("2090663220123"),
        ),
    ),
    Person("PROVISOIRE", "MATRICULE", "M", "2009-07-01", "63220", "1090763220888", OID_NIA),  # CNDA 2.05
    Person("TCHITCHI", "CATARINA", "F", "1936-06-21", "63220", "2360663220836"),
    # CR 02: two people share the traits; the birth place tells them apart.
    Person("DE VINCI", "LEONARDO", "M", "2014-02-01", "99127", "1140299127001"),
    Person("DE VINCI", "LEONARDO", "M", "2014-02-01", "75056", "1140275056002"),
    # Answers the client must refuse: 00 in the birth date (rule 11), empty birth name (rule 12).
    Person("LUNAIRE", "LUNA", "F", "1950-00-00", "63220", "2500063220011"),
    Person("SANSNOM", "ANONYME", "M", "1990-05-05", "63220", "1900563220022", returned_name=""),
]


def _norm(value: str | None) -> str:
    return " ".join((value or "").upper().split())


def by_traits(name: str, given: list[str], sex: str, date: str, place: str | None) -> list[Person]:
    found = []
    for p in PERSONS:
        tokens = p.given_names.split()
        if _norm(name) != p.birth_name or sex != p.sex or not p.matches_date(date):
            continue
        if given and not any(_norm(g) in tokens or _norm(g) == p.given_names for g in given):
            continue
        if place and place.upper() != p.birth_place:
            continue
        found.append(p)
    return found


def by_vitale(nir13: str, date: str, name: str | None) -> list[Person]:
    return [
        p
        for p in PERSONS
        if p.nir13 == nir13.upper() and p.matches_date(date) and (not name or _norm(name) == p.birth_name)
    ]


def verify(matricule: str, oid: str, name: str, given: str, sex: str, date: str) -> Person | None:
    """Unit verification: the person this INS belongs to, when these are their traits; None otherwise."""
    return next(
        (
            p
            for p in PERSONS
            if p.nir13 + p.key() == matricule.upper()
            and p.oid == oid
            and p.birth_name == _norm(name)
            and _norm(given) in p.given_names.split()
            and p.sex == sex
            and p.birth_date == date
        ),
        None,
    )
