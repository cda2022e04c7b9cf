"""Sandbox DMP: an HTTPS SOAP 1.2 ITI-41 / ITI-57 / ITI-62 endpoint with mutual TLS, VIHF verification,
metadata checks, a registry with visibility, and fault switches. Never imports `ris`."""

from sandbox.dmp.server import DmpSandbox
from sandbox.mssante.pki import CLIENT_PASSPHRASE

__all__ = ["CLIENT_PASSPHRASE", "DmpSandbox"]
