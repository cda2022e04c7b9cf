"""Fixed values of the CI-SIS "Transmission d'un document CDA-R2 en HL7v2" volet (hl7v2-transport.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# `visibility` and `release` follow an announcement (dmp-xds.md §6, TRANS IG Exemple 4): replacement
# messages with MODIF_CONF_CODE=Y on the same document, the first making the DMP copy visible to the
# patient, the second mailing the patient. Two messages, because one that updates the DMP and mails only
# the patient is not a combination of the MSSanté matrix.
Action = Literal["initial", "replace", "visibility", "release", "delete"]
MessageType = Literal["ORU", "MDM"]
ACTIONS: tuple[Action, ...] = ("initial", "replace", "visibility", "release", "delete")
METADATA_UPDATES: tuple[Action, ...] = ("visibility", "release")


@dataclass(frozen=True)
class ActionCodes:
    """Table §1: the MDM trigger, ORC-1 and the document OBX-11 must agree or the PFI rejects."""

    mdm_trigger: str
    orc_1: str
    obx_11: str


ACTION_CODES: dict[str, ActionCodes] = {
    "initial": ActionCodes("T02", "NW", "F"),
    "replace": ActionCodes("T10", "RO", "C"),
    "visibility": ActionCodes("T10", "RO", "C"),
    "release": ActionCodes("T10", "RO", "C"),
    "delete": ActionCodes("T04", "CA", "D"),
}

VERSION = {"ORU": "2.5", "MDM": "2.6"}
PROFILE = "2.1^CISIS_CDA_HL7_V2"  # MSH-21

DOCUMENT_TYPE = "18748-4^CR d'imagerie médicale^LN"  # OBR-4 = document OBX-3
DOCUMENT_TYPE_CODE = "18748-4"  # TXA-2

# Metadata OBX (§5), in the order the volet requires; OBX-3.2 labels as the ANS examples write them.
METADATA: tuple[tuple[str, str], ...] = (
    ("MASQUE_PS", "Masqué aux professionnels de Santé"),
    ("INVISIBLE_PATIENT", "Document Non Visible par le patient"),
    ("INVISIBLE_REP_LEGAUX", "Non visible par les représentants Légaux du patient"),
    ("CONNEXION_SECRETE", "Connexion Secrete"),
    ("MODIF_CONF_CODE", "Modification Confidentiality Code"),
    ("DESTDMP", "Destinataire DMP"),
    ("DESTMSSANTEPS", "Destinataire (Professionnel de Santé, organisation ou BAL applicative)"),
    ("DESTMSSANTEPAT", "Destinataire Patient"),
)
ACK_RECEPTION = ("ACK_RECEPTION", "Accusé de réception")
ACK_LECTURE_MSS = ("ACK_LECTURE_MSS", "Accusé de lecture")  # not the IG examples' ACK_LECTURE (§10.2)
METADATA_SYSTEM = "MetaDMPMSS"
YES_NO_SYSTEM = "expandedYes-NoIndicator"

# Authorities (PRT)
PS_AUTHORITY = "ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO"
ST_AUTHORITY = "ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO"

# ZAM business acknowledgements (§8)
ZAM_TRIGGERS = ("Z01", "Z02", "Z03")
