"""HL7 v2 to the integration platform (PFI): ORU^R01 / MDM^T02-T10-T04 carrying the CDA, sent over MLLP,
acknowledged by ACK, followed by ZAM business receipts (spec: hl7v2-transport.md)."""

from ris.channels.hl7.client import Hl7DeliveryError, Hl7Rejected, Hl7Transient, PfiClient
from ris.channels.hl7.listener import ZamListener
from ris.channels.hl7.message import Hl7RuleError, MatrixRefusal, Publication, Rendered, render

__all__ = [
    "Hl7DeliveryError",
    "Hl7Rejected",
    "Hl7RuleError",
    "Hl7Transient",
    "MatrixRefusal",
    "PfiClient",
    "Publication",
    "Rendered",
    "ZamListener",
    "render",
]
