"""Site settings: what a radiology site configures once (facility identity, texts, delays, routing).

Plain pydantic so that `ris` stays free of Prefect; `blocks.site.SiteSettingsBlock` stores one of these
on the Prefect server for the flows. The defaults describe a fictitious demo site.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator

from ris.site.call_targets import ContextCalls
from ris.site.insi_verification import VerificationContract
from ris.site.justificatifs import JustificatifPolicy
from ris.site.listeners import ListenerSettings
from ris.text_rules import one_line
from ris.tls.settings import TlsSettings

DEFAULT_RGPD_NOTICE = (
    "Vos données personnelles sont traitées par le centre d'imagerie pour la réalisation et le suivi de "
    "votre examen (base légale : mission d'intérêt public, art. 6.1.e et 9.2.h du RGPD). Elles sont "
    "conservées 20 ans et transmises aux professionnels qui vous prennent en charge, à votre DMP et à "
    "votre messagerie Mon espace santé. Vous disposez d'un droit d'accès, de rectification et "
    "d'opposition auprès du délégué à la protection des données : dpo@imagerie-demo.fr."
)


class Facility(BaseModel):
    """The structure that produces and keeps the reports (CDA custodian, HL7 sending facility)."""

    name: str = "Centre d'Imagerie Médicale Démo"
    finess_geo: str = Field("750000001", pattern=r"^\d{9}$", description="FINESS géographique (FINEG)")
    finess_legal: str = Field("750000002", pattern=r"^\d{9}$", description="FINESS juridique (FINEJ)")
    oid: str = Field(
        "1.2.250.1.71.4.2.2.1750000001",
        pattern=r"^[0-2](\.(0|[1-9]\d*))+$",
        description="Root OID of the site: document ids, set ids and IPPs are minted under it",
    )
    street: str = "12 rue de l'Hôpital"
    postal_code: str = "75012"
    city: str = "Paris"
    phone: str = "+33 1 23 45 67 89"
    facility_type_code: str = Field("SA08", description="JDV_J02 healthcareFacilityTypeCode")
    facility_type_label: str = "Cabinet de groupe"
    practice_setting_code: str = Field("AMBULATOIRE", description="JDV_J04 practiceSettingCode")
    practice_setting_label: str = "Ambulatoire"


class Hl7Routing(BaseModel):
    """How the site talks to its integration platform (PFI)."""

    enabled: bool = Field(
        True, description="Publish every validated version to the PFI, which relays DMP and MSSanté"
    )
    message_type: Literal["ORU", "MDM"] = "MDM"
    sending_application: str = "RIS-DEMO"
    receiving_application: str = "PFI"
    receiving_facility: str = "PFI-DEMO"
    processing_id: Literal["P", "T", "D"] = "P"
    matrix_check: Literal["reject", "warn"] = Field(
        "reject",
        description="Flag combinations outside the MSSanté matrix: refuse before sending, or only log",
    )
    # The matrix omits combinations the ANS's own examples send (hl7v2-transport.md §6, open point): sites
    # agree with their PFI vendor which extra ones it accepts. One string per combination, the eight
    # metadata flags in OBX order (MASQUE_PS ... DESTMSSANTEPAT), each Y, N or * (either).
    agreed_combinations: list[Annotated[str, Field(pattern=r"^[YN*]{8}$")]] = Field(
        default_factory=lambda: [
            "NN****YN",  # professionals only, nothing hidden (ANS MDM examples, IG Exemple 2): every
            #              report of an unqualified identity
            "YN*N*YNY",  # masked to professionals, in the DMP and sent to the patient (IG Exemple 1,
            #              the RIS.INTRA.01 proof scenario)
        ],
        description="Combinations accepted beyond the MSSanté matrix, as agreed with the PFI",
    )
    idempotent_on_control_id: bool = Field(
        True,
        description="The PFI files a message once per MSH-10 (hl7v2-transport.md §9): an AE or a timeout is "
        "sent again with the same MSH-10. Off: one attempt, and an administrator decides on the retry",
    )
    deletion_notice_mss: bool = Field(
        False,
        description="RIS.MSS.16: a deletion also goes to the MSSanté recipients of the report (a notice)",
    )
    request_receipts: bool = Field(True, description="Ask the PFI for ZAM receipts (ACK_RECEPTION)")
    request_read_receipts: bool = Field(True, description="Ask for MSSanté read receipts (ACK_LECTURE_MSS)")

    @property
    def partner(self) -> str:
        """How the PFI is named where rule 31 keeps who received the INS."""
        return f"PFI {self.receiving_application}^{self.receiving_facility}"


Route = Literal["pfi", "direct"]


class MssanteSending(BaseModel):
    """MSSanté sending (mssante.md): the route of each channel and what the engine's own mails say when
    it sends directly ("direct"); on "pfi" the PFI relays the copies (today's behaviour)."""

    route_ps: Route = Field("pfi", description="Professionals' copies: relayed by the PFI, or sent directly")
    route_patient: Route = Field("pfi", description="Patient's copy: relayed by the PFI, or sent directly")
    application_mailbox: str = Field(
        "cr-imagerie@imagerie-demo.mssante.fr",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="RIS.MSS.23: the structure's BAL applicative, sender of every report mail",
    )
    sender_label: Annotated[str, AfterValidator(one_line)] = Field(
        "Centre d'Imagerie Médicale Démo", min_length=1, description="RIS.MSS.13: Intitulé_BAL of the sender"
    )
    sender_mailbox: Literal["application", "radiologist"] = Field(
        "application",
        description="RIS.MSS.23-24: send from the BAL applicative, or (an SCM) from the validating "
        "radiologist's personal mailbox (the RPPS-Rang certificate pool's `mailbox`, else the directory)",
    )
    functional_unit: Annotated[str, AfterValidator(one_line)] = Field(
        "",
        max_length=64,
        description="RIS.MSS.13: the <Entité fonctionnelle> ending a personal mailbox's label "
        "(Dr_Prénom_NOM_<unit>); empty: none",
    )
    reply_to: str = Field(
        "secretariat@imagerie-demo.mssante.fr",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="RIS.MSS.11/17: the organisational mailbox replies go to (Reply-To)",
    )
    body_ps: str = Field(
        "Bonjour,\n\nVeuillez trouver ci-joint le compte rendu d'imagerie médicale de votre patient(e).",
        min_length=1,
        description="Text of the mail to professionals",
    )
    body_patient: str = Field(
        "Bonjour,\n\nVeuillez trouver ci-joint le compte rendu de votre examen d'imagerie médicale.",
        min_length=1,
        description="Text of the mail to the patient",
    )
    automatic_notice: str = Field(
        "Ce message a été généré automatiquement. Pour joindre l'émetteur, écrivez à {reply_to}.",
        description="RIS.MSS.11 footer of a BAL applicative mail; {reply_to} is the return mailbox",
    )
    replacement_text: str = Field(
        "ANNULE ET REMPLACE le compte rendu envoyé précédemment.",
        min_length=1,
        description="RIS.MSS.15: first line of a replacement's mail",
    )
    deletion_text: str = Field(
        "Le compte rendu ci-joint a été supprimé par son émetteur : merci de ne plus en tenir compte et "
        "de le supprimer de vos dossiers.",
        min_length=1,
        description="RIS.MSS.16: text of the optional deletion notice",
    )
    request_read_receipt: bool = Field(
        True, description="Ask for read receipts (Disposition-Notification-To)"
    )
    patient_may_reply: bool = Field(False, description="False: the patient mail carries X-MSS-MES: FIN")

    @field_validator("automatic_notice")
    @classmethod
    def _names_reply_to(cls, value: str) -> str:
        if "{reply_to}" not in value:
            raise ValueError("automatic_notice must contain the {reply_to} placeholder (RIS.MSS.11)")
        return value


class DmpSending(BaseModel):
    """DMP feed (dmp-xds.md): its route ("pfi": the PFI relays the copy, today's behaviour; "direct": the
    engine submits it itself, ITI-41), when it happens, and the site's default masking and visibility."""

    route: Route = Field("pfi", description="DMP copy: relayed by the PFI, or submitted directly (XDS.b)")
    automatic: bool = Field(
        True, description="RIS.DMP.01: feed the DMP on validation; off: every DMP copy is blocked"
    )
    blocked_exam_codes: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list,
        description="RIS.DMP.03: exam codes (LOINC or CCAM, as on the exam) never sent to the DMP",
    )
    default_mask_ps: bool = Field(
        False, description="RIS.DMP.06: every DMP copy masked to professionals (MASQUE_PS)"
    )
    default_invisible_legal_reps: bool = Field(
        False, description="RIS.DMP.06: every DMP copy invisible to legal representatives"
    )
    source_id: str | None = Field(
        None,
        pattern=r"^[0-2](\.(0|[1-9]\d*))+$",
        description="XDSSubmissionSet.sourceId: OID of the sending system; empty: the facility OID",
    )
    lps_id: str = Field("RIS-ENGINE", min_length=1, description="VIHF LPS_ID")
    lps_name: str = Field("ris-engine", min_length=1, description="VIHF LPS_Nom")
    lps_version: str = Field("0.1.0", min_length=1, description="VIHF LPS_Version")
    homologation: str = Field(
        "SANDBOX-HOMOLOGATION", min_length=1, description="VIHF LPS_ID_HOMOLOGATION_DMP (CNDA number)"
    )
    vihf_version: str = Field("4.0", min_length=1, description="VIHF_Version")


class IntakeLimits(BaseModel):
    """How much an operator's file may hold (a worklist, a report's text): memory stays bounded whatever
    the file, and what passes a maximum is refused with the setting named."""

    max_record_kb: int = Field(
        2048, ge=1, le=262_144, description="Largest worklist record (kB of JSON); a larger stops the load"
    )
    max_report_chars: int = Field(
        200_000, ge=1, le=10_000_000, description="Longest report text (body, conclusion), in characters"
    )
    max_refusals_listed: int = Field(
        1000, ge=1, le=1_000_000, description="Refused records a load lists one by one; beyond, only counted"
    )


class IdentityFeed(BaseModel):
    """Who sends identities to the PAM-FR listener (INS rules 30, 52)."""

    own_domain: list[str] = Field(
        default_factory=list, description="Sending applications (MSH-3) of the site's own identity domain"
    )
    trusted_senders: list[str] = Field(
        default_factory=list, description="Senders of another domain with a trust contract (rule 30)"
    )
    cares_directly: bool = Field(True, description="False when the site does not take care of the patients")


class SiteSettings(BaseModel):
    facility: Facility = Facility()
    hl7: Hl7Routing = Hl7Routing()
    mssante: MssanteSending = MssanteSending()
    dmp: DmpSending = DmpSending()
    identity_feed: IdentityFeed = IdentityFeed()
    justificatifs: JustificatifPolicy = Field(
        default_factory=JustificatifPolicy, description="RIS.INS.19-21: identity proofs and auto-validation"
    )
    insi_verification: VerificationContract = Field(
        default_factory=VerificationContract,
        description="RIS.INS.48: the INSi unit verification contract (open point: set it from SEL-MP-043)",
    )
    identity_worklist_alert_hours: float = Field(
        24, gt=0, description="Rule 55: hours an identity worklist item stays open before it alerts"
    )
    rgpd_notice: str = Field(DEFAULT_RGPD_NOTICE, min_length=1, description="RIS.DOC.06 footer text")
    replacement_notice: str = Field(
        "Annule et remplace le compte rendu du {date}",
        description="RIS.MSS.15 banner on versions ≥ 2; {date} is the replaced version's validation date",
    )
    reminder_delay_hours: float = Field(48, gt=0, description="RIS.CRR.06 provisional-report reminder delay")
    draft_reminder_delay_hours: float = Field(
        48,
        gt=0,
        description="RIS.CRR.06 reminder to the author of a draft (not validated) this long after it "
        "came into the RIS",
    )
    announcement_reminder_delay_hours: float = Field(
        48,
        gt=0,
        description="Reminder to the validating radiologist when a required announcement is still not "
        "recorded this long after validation",
    )
    reminder_repeat_hours: float | None = Field(
        None,
        gt=0,
        description="A report still overdue is reminded again after this many hours; empty: after its "
        "delay again (once per report per delay period)",
    )
    review_period_days: int = Field(30, gt=0, description="RIS.CRR.05 review list period")
    sender_label: Annotated[str, AfterValidator(one_line)] = "Centre d'Imagerie Médicale Démo"
    return_address: Annotated[str, AfterValidator(one_line)] = "secretariat@imagerie-demo.mssante.fr"
    paper_extra_traits: list[Literal["used_name", "used_given_name", "birth_place_code"]] = Field(
        default_factory=list, description="RIS.INS.53: traits printed besides the rule-32 minimum"
    )
    timezone: str = "Europe/Paris"

    @field_validator("replacement_notice")
    @classmethod
    def _has_date_slot(cls, value: str) -> str:
        if "{date}" not in value:
            raise ValueError("replacement_notice must contain the {date} placeholder")
        return value

    context_calls: ContextCalls = Field(default_factory=ContextCalls, description="RIS.DMP.04-05, RIS.AC.01")
    tls: TlsSettings = Field(
        default_factory=TlsSettings,
        description="RIS.MSS.06: revocation checking of every outbound link's server certificate",
    )
    listeners: ListenerSettings = Field(default_factory=ListenerSettings, description="MLLP listeners")
    intake: IntakeLimits = Field(
        default_factory=IntakeLimits, description="Maxima of the operators' files (worklists, report texts)"
    )
