"""Streaming import of the extractions into the directory tables, in batches: memory stays flat whatever
the file size (the national file is about 760 MB), each batch is one transaction, and a refused line is
reported with its number while the rest goes on.

A professional's activities are consecutive lines of the file (it is sorted by identifier); one who shows up
again later in the same file has the new activities added to those already read. Created, updated and
unchanged count professionals (or mailboxes); refused counts lines. Each batch also brings the RIS's own
users and correspondents with the same RPPS up to date (RIS.ANN.02–03), with an audit entry per change.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session

from ris.directory import extraction as ex
from ris.directory.referenced import fill_missing_addresses, refresh_correspondents
from ris.store.models import DirectoryMailbox, DirectoryPerson, utcnow

BATCH = 2000
MAX_REFUSALS_KEPT = 1000  # beyond it only the count grows: a broken file must not fill the memory
Progress = Callable[[int], None]
PERSONS = DirectoryPerson.__table__
MAILBOXES = DirectoryMailbox.__table__


@dataclass
class ImportSummary:
    what: str
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # lines of professionals without RPPS (ADELI only): not a key of the engine
    withdrawn: int = 0  # mailboxes the new file no longer lists
    correspondents_updated: int = 0
    refused_count: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)

    def refuse(self, number: int, reason: str) -> None:
        self.refused_count += 1
        if len(self.refused) < MAX_REFUSALS_KEPT:
            self.refused.append((number, reason))

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.what,
            "lines": self.lines,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "withdrawn": self.withdrawn,
            "correspondents_updated": self.correspondents_updated,
            "refused": self.refused_count,
            "refused_lines": [{"line": n, "reason": r} for n, r in self.refused],
        }


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def _digest(content: dict[str, Any]) -> str:
    return hashlib.md5(
        json.dumps(content, sort_keys=True, ensure_ascii=False).encode(), usedforsecurity=False
    ).hexdigest()


# --- professionals ------------------------------------------------------------------------------------------


def _person(fields: dict[str, str]) -> dict[str, Any]:
    person = {key: fields[key] or None for key in ex.PS_COLUMNS}
    if not person["family"]:
        raise ex.LineRefused(f"« {ex.PS_COLUMNS['family']} »: must not be empty")
    ex.check_lengths(fields)
    person["family_key"] = ex.search_key(person["family"])
    person["given_key"] = ex.search_key(person["given"])
    structure = _structure(fields)
    person["structures"] = [structure] if structure else []
    return person


def _structure(fields: dict[str, str]) -> dict[str, str]:
    return {key: fields[key] for key in ex.STRUCTURE_COLUMNS if fields[key]}


def _merge(structures: list[dict[str, str]], more: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    merged = list(structures)
    merged.extend(s for s in more if s and s not in merged)
    return merged


def _flush_persons(
    session: Session, batch: dict[str, dict[str, Any]], run: str, summary: ImportSummary
) -> None:
    if not batch:
        return
    existing = {
        row.rpps: row
        for row in session.connection().execute(
            sa.select(
                PERSONS.c.id,
                PERSONS.c.rpps,
                PERSONS.c.content_hash,
                PERSONS.c.import_run,
                PERSONS.c.structures,
            ).where(PERSONS.c.rpps.in_(list(batch)))
        )
    }
    now = utcnow()
    inserts, updates, touched = [], [], []
    for rpps, person in batch.items():
        old = existing.get(rpps)
        met_before = old is not None and old.import_run == run  # same file, earlier lines: add activities
        if met_before:
            person["structures"] = _merge(old.structures, person["structures"])
        digest = _digest(person)
        if old is None:
            inserts.append(
                {**person, "rpps": rpps, "content_hash": digest, "import_run": run, "updated_at": now}
            )
            summary.created += 1
        elif old.content_hash == digest:
            touched.append(old.id)
            summary.unchanged += 0 if met_before else 1
        else:
            updates.append(
                {**person, "_id": old.id, "content_hash": digest, "import_run": run, "updated_at": now}
            )
            summary.updated += 0 if met_before else 1
    _write_batch(session.connection(), PERSONS, run, inserts, updates, touched)
    summary.correspondents_updated += refresh_correspondents(session, batch)
    session.commit()
    batch.clear()


def _write_batch(
    connection: sa.Connection,
    table: sa.Table,
    run: str,
    inserts: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    touched: list[int],
) -> None:
    """One batch in three statements: new rows, changed rows (keyed by `_id`), and the unchanged ones
    marked as seen by this run."""
    if inserts:
        connection.execute(sa.insert(table), inserts)
    if updates:
        columns = {key: sa.bindparam(key) for key in updates[0] if key != "_id"}
        connection.execute(sa.update(table).where(table.c.id == sa.bindparam("_id")).values(columns), updates)
    if touched:
        connection.execute(sa.update(table).where(table.c.id.in_(touched)).values(import_run=run))


def import_persons(
    session: Session, stream: BinaryIO, *, what: str, run: str | None = None, progress: Progress | None = None
) -> ImportSummary:
    """Import « PS_LibreAcces_Personne_activite »; ExtractionRefused when the header is not that file's."""
    run = run or new_run_id()
    summary = ImportSummary(what)
    columns = {"id_type": ex.PS_ID_TYPE, "rpps": ex.PS_ID, **ex.PS_COLUMNS, **ex.STRUCTURE_COLUMNS}
    batch: dict[str, dict[str, Any]] = {}
    for line in ex.read_lines(stream, columns, "a « PS_LibreAcces_Personne_activite » extraction"):
        if progress:
            progress(line.size)
        if line.number == 1 or line.fields == {}:
            continue
        summary.lines += 1
        if line.fields is None:
            summary.refuse(line.number, line.error or "unreadable")
            continue
        if line.fields["id_type"] != ex.RPPS_ID_TYPE:
            summary.skipped += 1
            continue
        try:
            rpps = ex.check_rpps(line.fields["rpps"])
            person = _person(line.fields)
        except ex.LineRefused as exc:
            summary.refuse(line.number, str(exc))
            continue
        if rpps in batch:  # another activity of the professional just read
            batch[rpps]["structures"] = _merge(batch[rpps]["structures"], person["structures"])
            continue
        if len(batch) >= BATCH:
            _flush_persons(session, batch, run, summary)
        batch[rpps] = person
    _flush_persons(session, batch, run, summary)
    return summary


# --- MSSanté mailboxes --------------------------------------------------------------------------------------


def _mailbox(fields: dict[str, str]) -> dict[str, Any]:
    kind = fields["kind"].upper()
    if kind not in ex.MAILBOX_KINDS:
        raise ex.LineRefused(
            f"« {ex.MSS_COLUMNS['kind']} » {fields['kind']!r}: one of {', '.join(sorted(ex.MAILBOX_KINDS))}"
        )
    address = fields["address"].lower()
    if not ex.ADDRESS_RE.match(address) or len(address) > 254:
        raise ex.LineRefused(f"« {ex.MSS_COLUMNS['address']} » {fields['address']!r}: not a mail address")
    rpps = None
    if fields["id_type"] == ex.RPPS_ID_TYPE and fields["rpps"]:
        rpps = ex.check_rpps(fields["rpps"], ex.MSS_COLUMNS["rpps"])
    return {
        "address": address,
        "kind": kind,
        "rpps": rpps,
        "organisation": fields["organisation"][:200] or None,
        "service": fields["service"][:200] or None,
    }


def _flush_mailboxes(
    session: Session, batch: dict[str, dict[str, Any]], run: str, summary: ImportSummary
) -> None:
    if not batch:
        return
    connection = session.connection()
    existing = {
        row.address: row
        for row in connection.execute(sa.select(MAILBOXES).where(MAILBOXES.c.address.in_(list(batch))))
    }
    inserts, updates, touched = [], [], []
    for address, box in batch.items():
        old = existing.get(address)
        if old is None:
            inserts.append({**box, "import_run": run})
            summary.created += 1
        elif all(getattr(old, key) == value for key, value in box.items()):
            touched.append(old.id)
            summary.unchanged += 1
        else:
            updates.append({**box, "_id": old.id, "import_run": run})
            summary.updated += 1
    _write_batch(connection, MAILBOXES, run, inserts, updates, touched)
    session.commit()
    batch.clear()


def import_mailboxes(
    session: Session, stream: BinaryIO, *, what: str, run: str | None = None, progress: Progress | None = None
) -> ImportSummary:
    """Import the MSSanté address extraction. It lists every mailbox: once the file is read to its end,
    the mailboxes it no longer lists are withdrawn, and correspondents without an address get their
    directory one (RIS.ANN.05)."""
    run = run or new_run_id()
    summary = ImportSummary(what)
    batch: dict[str, dict[str, Any]] = {}
    for line in ex.read_lines(stream, ex.MSS_COLUMNS, "an MSSanté address extraction"):
        if progress:
            progress(line.size)
        if line.number == 1 or line.fields == {}:
            continue
        summary.lines += 1
        if line.fields is None:
            summary.refuse(line.number, line.error or "unreadable")
            continue
        try:
            box = _mailbox(line.fields)
        except ex.LineRefused as exc:
            summary.refuse(line.number, str(exc))
            continue
        if len(batch) >= BATCH and box["address"] not in batch:
            _flush_mailboxes(session, batch, run, summary)
        batch[box["address"]] = box
    _flush_mailboxes(session, batch, run, summary)
    withdrawn = session.connection().execute(sa.delete(MAILBOXES).where(MAILBOXES.c.import_run != run))
    summary.withdrawn = withdrawn.rowcount
    summary.correspondents_updated += fill_missing_addresses(session)
    session.commit()
    return summary


IMPORTERS = {"persons": import_persons, "mailboxes": import_mailboxes}


def import_file(session: Session, path: Path, kind: str, run: str) -> ImportSummary:
    """Import one extraction file (`persons` or `mailboxes`) of the import run `run`."""
    with ex.open_extraction(path) as (stream, _size):
        return IMPORTERS[kind](session, stream, what=path.name, run=run)
