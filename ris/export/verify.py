"""Re-read a portability export and prove it complete: every file the manifest lists is there with its
SHA-256 and nothing else is, each file holds the counted lines, each line validates against its schema,
every reference resolves and every document file matches the hashes its line gives."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ris.export.schemas import ENTITIES
from ris.export.writer import FORMAT, MANIFEST

CHUNK = 1 << 20
SHOWN = 20  # problems listed before "... and N more"


class ExportIncomplete(ValueError):
    """The export does not hold what its manifest says."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f"\n... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        super().__init__("\n".join(problems[:SHOWN]) + more)


@dataclass
class VerifiedExport:
    manifest: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_files(root: Path, manifest: dict[str, Any], problems: list[str]) -> None:
    listed = manifest.get("files", {})
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    problems.extend(
        f"{path}: in the folder but not in the manifest" for path in sorted(present - set(listed))
    )
    for path, expected in listed.items():
        if path not in present:
            problems.append(f"{path}: listed in the manifest but missing")
        elif (root / path).stat().st_size != expected["size"] or _sha256(root / path) != expected["sha256"]:
            problems.append(f"{path}: content differs from the manifest's SHA-256")


def _lines(root: Path, entity: str, problems: list[str]) -> Any:
    schema = json.loads((root / "schemas" / f"{entity}.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    with (root / f"{entity}.jsonl").open(encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            try:
                line = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{entity}.jsonl line {number}: not JSON ({exc.msg})")
                continue
            for error in validator.iter_errors(line):
                where = "/".join(map(str, error.absolute_path)) or "(line)"
                problems.append(f"{entity}.jsonl line {number}: {where}: {error.message}")
            yield number, line


def verify_export(root: Path) -> VerifiedExport:
    """The checked manifest and the lines counted per file; ExportIncomplete with every problem found."""
    if not (root / MANIFEST).is_file():
        raise ExportIncomplete([f"{root}: no {MANIFEST} (not an export of this engine)"])
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ExportIncomplete([f"{MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}"])
    problems: list[str] = []
    _check_files(root, manifest, problems)
    if problems:  # the lines of files that are not the exported ones prove nothing
        raise ExportIncomplete(problems)

    counts: dict[str, int] = {}
    ids: dict[str, set[Any]] = {entity: set() for entity in ENTITIES}
    document_files = 0
    for entity in ENTITIES:
        counts[entity] = 0
        for number, line in _lines(root, entity, problems):
            counts[entity] += 1
            ids[entity].add(line.get("id"))
            where = f"{entity}.jsonl line {number}"
            if entity == "reports" and line.get("exam", {}).get("patient_id") not in ids["patients"]:
                problems.append(f"{where}: its patient is not in patients.jsonl")
            if entity in ("documents", "deliveries") and line.get("report_id") not in ids["reports"]:
                problems.append(f"{where}: report {line.get('report_id')} is not in reports.jsonl")
            if entity == "documents":
                for name, digest in (
                    ("cda_file", line.get("cda_sha256")),
                    ("pdf_file", line.get("pdf_sha256")),
                ):
                    ref = line.get(name) or {}
                    document_files += 1
                    if manifest["files"].get(ref.get("path"), {}).get("sha256") != digest:
                        problems.append(f"{where}: {name} is not the stored document {digest}")
    counts["document_files"] = document_files
    if counts != manifest.get("counts"):
        problems.append(f"{MANIFEST}: counts {manifest.get('counts')}, the files hold {counts}")
    if problems:
        raise ExportIncomplete(problems)
    return VerifiedExport(manifest, counts)
