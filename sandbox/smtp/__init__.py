"""Sandbox SMTP server (the site's mail relay, later the MSSanté operator): STARTTLS or implicit TLS with a
test CA generated at start, every message kept in memory and as an .eml file. Never imports `ris`."""

from sandbox.smtp.pki import TestPki
from sandbox.smtp.server import Received, SmtpSandbox

__all__ = ["Received", "SmtpSandbox", "TestPki"]
