"""Sandbox MSSanté operator: SMTP with STARTTLS and client certificates, DSN parameters, .eml store,
fault switches. Never imports `ris`."""

from sandbox.mssante.pki import CLIENT_PASSPHRASE, MssPki
from sandbox.mssante.server import MssSandbox

__all__ = ["CLIENT_PASSPHRASE", "MssPki", "MssSandbox"]
