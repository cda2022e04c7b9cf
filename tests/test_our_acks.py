"""The acknowledgements the engine writes (to the PAM-FR sender, to the PFI's ZAM receipts) are valid HL7
v2 for their version, errors included: hl7apy STRICT validation, as for every message we produce."""

from __future__ import annotations

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from ris.channels.hl7.listener import ZamListener
from ris.identity.intake import PamIntake
from tests import factories
from tests.hl7.test_end_to_end import z01
from tests.identity.test_pam import OWN, message


def _valid(ack: str, version: str) -> None:
    parsed = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert parsed.msh.msh_12.to_er7().split("^")[0] == version
    assert parsed.validate()
    assert parsed.msh.msh_9.to_er7().startswith("ACK")


async def test_pam_acks_are_valid_v25(db_url):
    intake = PamIntake(OWN)
    accepted = await intake.handle(message())
    refused = await intake.handle(
        message(cid="1002", pid="PID|1||000004^^^CHU-X&000897406&N^PI||||19790328|F")
    )
    assert "|AA|" in accepted and ("|AE|" in refused or "|AR|" in refused) and "\rERR|" in refused
    for ack in (accepted, refused):
        _valid(ack, "2.5")


async def test_zam_acks_are_valid_v26(db_url):
    listener = ZamListener(me=factories.SITE_PARTY)
    unknown = await listener.handle(z01("Z-1", "NOT-A-KNOWN-MSH10"))
    assert "|AE|" in unknown and "\rERR|" in unknown
    _valid(unknown, "2.6")
