"""The INSi unit verification contract (vérification unitaire: RIS.INS.48, rules 48-55) — an OPEN POINT.

The CNAM WSDL DESIR_ICIR_EXP_1.5.0 has no verification operation: its contract (operation, SOAP action,
request and OK/KO answer) is in the SEL-MP-043 package of the GIE SESAM-Vitale, which is not public (ins.md
§7.1). Until a site has it, the engine sends the body sketch a third party published
(`RequeteUnitaire/IndividuVerifie/{INSFourni(IdIndividu, OID), TraitsIdentiteIndividu}`) under a
provisional namespace and action, and reads the answer as the searches' RESULTAT document:
- a CodeCR among `ok_codes`: the INS belongs to these traits (OK); when the answer carries an INDIVIDU,
  its traits are the reference (rule 6), else the traits sent, which INSi just confirmed;
- a CodeCR among `ko_codes`: it does not (KO);
- any other answer is unreadable: traced, never taken for an OK.

Everything the real contract may set otherwise is a site setting (`SiteSettings.insi_verification`, section
`[site.insi_verification]` of `ris configure`): set it from the SEL-MP-043 package before production use.
"""

from __future__ import annotations

from typing import Literal

from lxml import etree
from pydantic import BaseModel, Field

PROVISIONAL_NAMESPACE = "urn:ris-engine:provisional:insi-verification"
PROVISIONAL_ACTION = "urn:ServiceIdentiteCertifiee:1.0.0:verifierIdentite"


class VerificationContract(BaseModel):
    """What the engine sends and how it reads the answer (provisional defaults, see the module docstring)."""

    namespace: str = Field(PROVISIONAL_NAMESPACE, min_length=1, description="Namespace of the request body")
    action: str = Field(PROVISIONAL_ACTION, min_length=1, description="SOAP action (wsa:Action)")
    ok_codes: list[str] = Field(default_factory=lambda: ["00"], min_length=1, description="CodeCR for OK")
    ko_codes: list[str] = Field(default_factory=lambda: ["01"], min_length=1, description="CodeCR for KO")

    def verdict(self, code: str) -> Literal["ok", "ko"] | None:
        """OK, KO, or None for a code the contract does not name (the answer is then unreadable)."""
        if code in self.ok_codes:
            return "ok"
        if code in self.ko_codes:
            return "ko"
        return None

    def request_body(
        self,
        matricule: str,
        oid: str,
        *,
        birth_name: str,
        given_names: tuple[str, ...],
        sex: str,
        birth_date: str,
        birth_place_code: str | None,
    ) -> etree._Element:
        """RequeteUnitaire/IndividuVerifie/{INSFourni, TraitsIdentiteIndividu} in the contract's namespace."""
        v = self.namespace
        body = etree.Element(f"{{{v}}}RequeteUnitaire", nsmap={"v": v})
        person = etree.SubElement(body, f"{{{v}}}IndividuVerifie")
        ins = etree.SubElement(person, f"{{{v}}}INSFourni")
        ident = etree.SubElement(ins, f"{{{v}}}IdIndividu")
        etree.SubElement(ident, f"{{{v}}}NumIdentifiant").text = matricule[:13]
        etree.SubElement(ident, f"{{{v}}}Cle").text = matricule[13:]
        etree.SubElement(ins, f"{{{v}}}OID").text = oid
        tiq = etree.SubElement(person, f"{{{v}}}TraitsIdentiteIndividu")
        values = [
            ("NomNaissance", birth_name),
            ("Prenom", given_names[0] if given_names else ""),
            ("ListePrenom", " ".join(given_names)),
            ("Sexe", sex),
            ("DateNaissance", birth_date),
            ("LieuNaissance", birth_place_code or ""),
        ]
        for name, value in values:
            etree.SubElement(tiq, f"{{{v}}}{name}").text = value
        return body
