"""The sandbox DMP's registry: documents with their versions, status and visibility codes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Entry:
    """One logical document (`lid`: its first entryUUID) and its current version's metadata."""

    lid: str
    entry_ids: list[str]
    unique_id: str
    patient_id: str
    sha1: str
    size: int
    confidentiality: list[str]
    submission_uid: str
    status: str = "Approved"  # Approved, Deprecated (replaced), Deleted
    version: int = 1
    replaced_by: str | None = None
    history: list[list[str]] = field(default_factory=list)  # confidentiality codes of former versions

    @property
    def visibility(self) -> list[str]:
        return self.confidentiality[1:]


class Registry:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}  # by lid
        self.lock = threading.Lock()

    def by_unique_id(self, unique_id: str) -> Entry | None:
        return next((e for e in self.entries.values() if e.unique_id == unique_id), None)

    def resolve(self, ident: str) -> Entry | None:
        """An entry by its logical id or the entryUUID of any of its versions."""
        return self.entries.get(ident) or next(
            (e for e in self.entries.values() if ident in e.entry_ids), None
        )

    def approved(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.status == "Approved"]
