"""Matricule INS: NIR or NIA, 13 characters + a 2-digit key (ins.md §5), and the INS OIDs (§6)."""

from __future__ import annotations

import re
from typing import Literal

from ris.identity.errors import IdentityRuleError

OID_NIR = "1.2.250.1.213.1.4.8"
OID_NIA = "1.2.250.1.213.1.4.9"
OID_TEST = "1.2.250.1.213.1.4.10"
OID_DEMO = "1.2.250.1.213.1.4.11"
INS_OIDS = frozenset({OID_NIR, OID_NIA, OID_TEST, OID_DEMO})
# HL7 v2 CX.4 namespace of each OID (PAM-FR); test and demo identities are NIRs.
NAMESPACES = {
    OID_NIR: "ASIP-SANTE-INS-NIR",
    OID_NIA: "ASIP-SANTE-INS-NIA",
    OID_TEST: "ASIP-SANTE-INS-NIR",
    OID_DEMO: "ASIP-SANTE-INS-NIR",
}

# sex digit, YY, MM, département (2 digits, 2A or 2B) + commune (3), order (3): INSi response pattern
_N13 = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2[AB])[0-9]{6}$")
_CORSICA = {"2A": "19", "2B": "18"}
RULE = "INS rule 17"


def nir_key(n13: str) -> int:
    """97 - (N mod 97), with Corsica 2A -> 19 and 2B -> 18 in positions 6-7."""
    s = n13.upper()
    s = s[:5] + _CORSICA.get(s[5:7], s[5:7]) + s[7:]
    return 97 - int(s) % 97


def matricule_problem(matricule: str) -> str | None:
    """Why a 15-character matricule INS is malformed or its key does not verify; None when fine."""
    m = matricule.strip().upper()
    if len(m) != 15:
        return f"must be exactly 15 characters (13 + 2-digit key), got {len(m)}"
    n13, key = m[:13], m[13:]
    if not _N13.match(n13):
        return "positions 1-13 must be digits, with 2A or 2B allowed only in positions 6-7 (Corsica)"
    if not key.isdigit():
        return "the key (positions 14-15) must be two digits"
    expected = nir_key(n13)
    if int(key) != expected:
        return f"control key {key} does not match the 13 characters (expected {expected:02d})"
    return None


def check_matricule(matricule: str, field: str = "ins_matricule") -> str:
    """The normalised matricule, or IdentityRuleError naming why (key checked before any use, rule 17)."""
    problem = matricule_problem(matricule)
    if problem:
        raise IdentityRuleError(field, problem, RULE)
    return matricule.strip().upper()


def with_key(n13: str) -> str:
    return f"{n13.upper()}{nir_key(n13):02d}"


def nature(oid: str) -> Literal["NIR", "NIA"]:
    """NIR or NIA: told by the OID only, a NIA's digits look like a NIR's (ins.md §5)."""
    if oid not in INS_OIDS:
        raise IdentityRuleError("ins_oid", f"{oid!r} is not an INS OID (.8, .9, .10 or .11)", "INS rule 1")
    return "NIA" if oid == OID_NIA else "NIR"
