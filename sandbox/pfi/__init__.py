"""Sandbox PFI (integration platform): MLLP server with ACK and ZAM receipts. Never imports `ris`."""

from sandbox.pfi.server import FAULTS, PfiSandbox, Received

__all__ = ["FAULTS", "PfiSandbox", "Received"]
