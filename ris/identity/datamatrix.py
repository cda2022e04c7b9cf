"""Datamatrix INS (ins.md §11): the payload of a qualified identity and its ECC 200 symbol.

Payload = header `IS01` + 22 zeros, then `<ID><value>` fields S1-S7. A GS (0x1D) ends a variable-length
field shorter than its maximum unless it is the last field; fixed-length fields never take one.
Messages never quote the values: they are health data.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from PIL import Image
from pylibdmtx import pylibdmtx

from ris.identity.nir import INS_OIDS
from ris.store.models import Patient

HEADER = "IS01" + "0" * 22
GS = "\x1d"
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS"})
_ALLOWED_TRAIT = re.compile(r"^[A-Z][A-Z '\-]*$")


class DatamatrixError(ValueError):
    """A trait that cannot go into a Datamatrix INS; the message names the field and the rule."""


@dataclass(frozen=True)
class _Field:
    ident: str
    label: str
    max_len: int
    fixed: bool


_S1 = _Field("S1", "matricule INS", 15, True)
_S2 = _Field("S2", "OID", 20, False)
_S3 = _Field("S3", "prénoms de naissance", 100, False)
_S4 = _Field("S4", "nom de naissance", 100, False)
_S5 = _Field("S5", "sexe", 1, True)
_S6 = _Field("S6", "date de naissance", 10, True)
_S7 = _Field("S7", "code lieu de naissance", 5, True)


def insi_text(value: str) -> str:
    """Upper case without diacritics (INSi lexical profile): 'Hélène Œdipe' -> 'HELENE OEDIPE'."""
    decomposed = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.upper().split())


def payload(
    *,
    matricule: str,
    oid: str,
    birth_given_names: str,
    birth_name: str,
    sex: str,
    birth_date: dt.date,
    birth_place_code: str | None = None,
) -> str:
    """The Datamatrix INS content, fields in the S1..S7 order."""
    given, family = insi_text(birth_given_names), insi_text(birth_name)
    fields: list[tuple[_Field, str]] = [
        (_S1, matricule),
        (_S2, oid),
        (_S3, given),
        (_S4, family),
        (_S5, sex),
        (_S6, birth_date.strftime("%d-%m-%Y")),
    ]
    if birth_place_code:
        fields.append((_S7, birth_place_code.upper()))
    _check(fields)
    parts = [HEADER]
    for index, (spec, value) in enumerate(fields):
        last = index == len(fields) - 1
        parts.append(spec.ident + value)
        if not spec.fixed and len(value) < spec.max_len and not last:
            parts.append(GS)
    return "".join(parts)


def _check(fields: list[tuple[_Field, str]]) -> None:
    for spec, value in fields:
        where = f"Datamatrix INS field {spec.ident} ({spec.label})"
        if not value:
            raise DatamatrixError(f"{where}: missing")
        if spec.fixed and len(value) != spec.max_len:
            raise DatamatrixError(f"{where}: must be exactly {spec.max_len} characters")
        if len(value) > spec.max_len:
            raise DatamatrixError(f"{where}: longer than {spec.max_len} characters")
    by_id = {spec.ident: value for spec, value in fields}
    if not re.fullmatch(r"\d{5}[0-9AB]\d{9}", by_id["S1"]):
        raise DatamatrixError("Datamatrix INS field S1 (matricule INS): must be 13 characters + 2-digit key")
    if by_id["S2"] not in INS_OIDS:
        raise DatamatrixError("Datamatrix INS field S2 (OID): not an INS authority OID (.8, .9, .10, .11)")
    for ident in ("S3", "S4"):
        if not _ALLOWED_TRAIT.match(by_id[ident]):
            raise DatamatrixError(
                f"Datamatrix INS field {ident}: only letters, space, hyphen and apostrophe are allowed"
            )
    if by_id["S5"] not in ("M", "F"):
        raise DatamatrixError("Datamatrix INS field S5 (sexe): must be M or F")
    if "S7" in by_id and not by_id["S7"].isalnum():
        raise DatamatrixError("Datamatrix INS field S7 (code lieu de naissance): must be a 5-character COG")


def payload_for(patient: Patient) -> str:
    """The payload of a patient's INS; the caller has checked that the identity is qualified."""
    return payload(
        matricule=patient.ins_matricule or "",
        oid=patient.ins_oid or "",
        birth_given_names=patient.birth_given_names or patient.first_birth_given_name,
        birth_name=patient.birth_name,
        sex=patient.sex,
        birth_date=patient.birth_date,
        birth_place_code=patient.birth_place_code,
    )


def encode(content: str) -> Image.Image:
    """Square ECC 200 symbol as an opaque RGB image (PDF/A-1 forbids alpha), quiet zone of 2 modules."""
    symbol = pylibdmtx.encode(content.encode("ascii"), size="SquareAuto")
    return Image.frombytes("RGB", (symbol.width, symbol.height), symbol.pixels)


def decode(image: Image.Image) -> bytes:
    """The bytes of the first Datamatrix found in `image` (for checks and tests)."""
    found = pylibdmtx.decode(image, max_count=1)
    if not found:
        raise DatamatrixError("no Datamatrix symbol found in the image")
    return found[0].data
