"""What the sandbox PFI checks in a PAM-FR identity update (ADT A31 / A47, IHE PAM-FR 2.11, ins.md §8).

Written from the spec, not from the engine's code: HL7 v2.5 structure (hl7apy STRICT), the PAM-FR profile
in MSH-21, the INS form in PID-3 (and MRG-1 for an A47), a valid NIR key, PID-32 present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from sandbox.pfi.checks import Problem, make_problem
from sandbox.pfi.wire import Seg, split

EVENTS = {"A31": "ADT_A05", "A47": "ADT_A30"}  # trigger -> message structure (MSH-9.3)
PROFILE = re.compile(r"^2\.\d+\^IHE_FRANCE-2\.\d+-PAM$")
INS_AUTHORITIES = {
    "1.2.250.1.213.1.4.8": "ASIP-SANTE-INS-NIR",  # NIR
    "1.2.250.1.213.1.4.9": "ASIP-SANTE-INS-NIA",  # NIA
    "1.2.250.1.213.1.4.10": "ASIP-SANTE-INS-NIR",  # test INS
    "1.2.250.1.213.1.4.11": "ASIP-SANTE-INS-NIR",  # test INS (DEMO)
}
# Table 0445 values of the PAM-FR validator profiles.
RELIABILITY = frozenset(
    {
        "VIDE",
        "PROV",
        "VALI",
        "DOUB",
        "DESA",
        "DPOT",
        "DOUA",
        "COLP",
        "COLV",
        "FILI",
        "CACH",
        "ANOM",
        "IDVER",
        "RECD",
        "IDRA",
        "USUR",
        "HOMD",
        "HOMA",
        "INVA",
        "FICT",
        "DOUT",
    }
)
MATRICULE = re.compile(r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$")  # 13 characters + key


@dataclass
class IdentityFacts:
    control_id: str
    trigger: str  # A31 / A47
    identifiers: list[tuple[str, str]]  # PID-3: (CX.1, CX.5)
    prior: list[tuple[str, str]]  # MRG-1 of an A47
    reliability: list[str]  # PID-32


def is_identity_update(msh: Seg) -> bool:
    return msh.c(9, 1) == "ADT" and msh.c(9, 2) in EVENTS


def nir_key_ok(matricule: str) -> bool:
    """NIR / NIA key: 97 - (13 digits mod 97), Corsica 2A / 2B counted as 19 / 18."""
    if not MATRICULE.match(matricule):
        return False
    body = matricule[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(body) % 97 == int(matricule[13:])


def _identifiers(field: str, where: str) -> tuple[list[tuple[str, str]], Problem | None]:
    found = []
    for rep in (r for r in field.split("~") if r):
        comps = rep.split("^")
        value, authority, kind = (
            comps[0],
            comps[3] if len(comps) > 3 else "",
            comps[4] if len(comps) > 4 else "",
        )
        subs = authority.split("&")
        oid = subs[1] if len(subs) > 1 else ""
        if kind == "INS" or oid in INS_AUTHORITIES:
            expected = f"{INS_AUTHORITIES.get(oid, '?')}&{oid}&ISO"
            if oid not in INS_AUTHORITIES or authority != expected or kind != "INS":
                return found, make_problem(
                    "103",
                    f"{where}^1^4",
                    "an INS needs CX.4 ASIP-SANTE-INS-NIR/NIA&<INS OID>&ISO and CX.5 INS",
                )
            if not nir_key_ok(value):
                return found, make_problem(
                    "102", f"{where}^1^1", "the matricule INS is malformed or its key is wrong"
                )
        found.append((value, kind))
    return found, None


def check_identity(message: str) -> tuple[IdentityFacts | None, Problem | None]:
    segments = split(message)
    msh = segments[0]
    facts = IdentityFacts(msh.f(10), msh.c(9, 2), [], [], [])
    if not facts.control_id:
        return None, make_problem("101", "MSH^1^10", "MSH-10 message control id is empty")
    if msh.c(9, 3) != EVENTS[facts.trigger]:
        return facts, make_problem(
            "207", "MSH^1^9", f"ADT^{facts.trigger} must use the {EVENTS[facts.trigger]} structure"
        )
    if msh.c(12, 1) != "2.5":
        return facts, make_problem("203", "MSH^1^12", "PAM-FR identity updates must be HL7 2.5")
    if msh.f(11) not in ("P", "T", "D"):
        return facts, make_problem("202", "MSH^1^11", "processing id must be P, T or D")
    if not PROFILE.match(msh.f(21)):
        return facts, make_problem("101", "MSH^1^21", "MSH-21 must declare the IHE_FRANCE PAM profile")
    try:
        parsed = parse_message(
            message.replace("\n", "\r").strip("\r"),
            validation_level=VALIDATION_LEVEL.STRICT,
            find_groups=True,
        )
        ok = parsed.validate()
    except Exception as exc:  # hl7apy raises many unrelated exception types
        return facts, make_problem("199", "", f"structure: {type(exc).__name__}: {exc}"[:300])
    if not ok:
        return facts, make_problem("199", "", "structure: hl7apy validation failed")
    # The structure check guarantees PID, PV1 for an A31, MRG with MRG-1 for an A47.
    by_name = {s.name: s for s in reversed(segments)}  # first occurrence of each segment
    pid = by_name["PID"]
    facts.identifiers, problem = _identifiers(pid.f(3), "PID")
    if problem:
        return facts, problem
    if not any(kind == "PI" for _, kind in facts.identifiers):
        return facts, make_problem("101", "PID^1^3", "PID-3 needs the patient's local identifier (CX.5 PI)")
    facts.reliability = [r for r in pid.f(32).split("~") if r]
    if not facts.reliability:
        return facts, make_problem("101", "PID^1^32", "PID-32 identity reliability code is required")
    if unknown := [r for r in facts.reliability if r not in RELIABILITY]:
        return facts, make_problem("103", "PID^1^32", f"PID-32 {unknown[0]!r} is not in table 0445")
    if facts.trigger == "A31":
        if by_name["PV1"].f(2) != "N":
            return facts, make_problem("103", "PV1^1^2", "an A31 carries PV1 with patient class N")
        return facts, None
    facts.prior, problem = _identifiers(by_name["MRG"].f(1), "MRG")
    return facts, problem
