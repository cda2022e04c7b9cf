"""Site settings of the outgoing contextual calls (RIS.DMP.04–05, RIS.AC.01): for each target, the address,
how the data travel (an HTTP POST form, or the query of a GET address) and which parameter carries which
datum of the patient, the exam or the acting professional.

The DMP web PS call of TD0.9 is a POST: the INS and the traits travel in the body of a form, never in an
address (browser history, proxy logs). Its address and parameter names are not specified in the
references the engine has (dmp-xds.md §10, open point): the site fills them from the DMP integration guide
it is homologated against. A third application (the PACS viewer) is called as its own contract says, GET
or POST. Every call carries the full INS (matricule and OID, RIS.AC.01) over https."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

# What a parameter may carry. The INS and its strict traits (birth name, birth given names, birth date,
# sex, birth place) leave only for a qualified identity.
ContextDatum = Literal[
    "ins",  # matricule INS, 15 characters
    "ins_oid",
    "ins_nature",  # NIR or NIA
    "birth_name",
    "first_birth_given_name",
    "birth_given_names",
    "birth_date",
    "sex",
    "birth_place_code",
    "ipp",
    "ps_rpps",  # the acting professional
    "accession_number",  # the exam of the report, when the call names a report
    "study_instance_uid",
    "report_id",
]
REQUIRED: tuple[ContextDatum, ...] = ("ins", "ins_oid")  # RIS.AC.01: « l'INS complet »


class ContextCallTarget(BaseModel):
    url: str | None = Field(
        None, description="https address the call opens; empty: this target is not configured on the site"
    )
    method: Literal["get", "post"] = Field(
        "get",
        description="post: the data go in the body of a form the browser posts (the address carries none); "
        "get: in the query of the address",
    )
    parameters: dict[str, ContextDatum] = Field(description="Parameter name -> the datum it carries")
    date_format: str = Field("%Y-%m-%d", description="strftime format of birth_date, e.g. %Y%m%d or %d/%m/%Y")

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme != "https" or not urlsplit(value).netloc):
            raise ValueError("must be an https:// address (the call carries the INS)")
        return value

    @model_validator(mode="after")
    def _carries_the_ins(self) -> ContextCallTarget:
        missing = [d for d in REQUIRED if d not in self.parameters.values()]
        if missing:
            raise ValueError(f"parameters must carry {' and '.join(missing)} (RIS.AC.01: the full INS)")
        return self


class ContextCalls(BaseModel):
    dmp: ContextCallTarget = Field(
        default_factory=lambda: ContextCallTarget(
            method="post",
            parameters={
                "ins": "ins",
                "oid": "ins_oid",
                "nom": "birth_name",
                "prenom": "first_birth_given_name",
                "datenaissance": "birth_date",
                "sexe": "sex",
                "rpps": "ps_rpps",
            },
        ),
        description="RIS.DMP.04-05: the patient's record in the DMP web PS (TD0.9)",
    )
    pacs: ContextCallTarget = Field(
        default_factory=lambda: ContextCallTarget(
            parameters={
                "ins": "ins",
                "oid": "ins_oid",
                "name": "birth_name",
                "given": "first_birth_given_name",
                "birthdate": "birth_date",
                "sex": "sex",
                "accession": "accession_number",
            }
        ),
        description="RIS.AC.01: the outgoing contextual call with the INS, e.g. the PACS viewer",
    )

    @model_validator(mode="after")
    def _dmp_posts(self) -> ContextCalls:
        if self.dmp.method != "post":
            raise ValueError(
                "dmp.method must be post (TD0.9: the INS and the traits never travel in an address)"
            )
        return self
