"""INSi sandbox: a local SOAP 1.2 stand-in for the CNAM teleservice (`python -m sandbox.insi --port N`)."""

from sandbox.insi.server import FAULTS, InsiSandbox, TlsFiles

__all__ = ["FAULTS", "InsiSandbox", "TlsFiles"]
