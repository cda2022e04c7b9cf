"""The README placed inside every export: what each file holds and how to check it, for whoever receives
it without access to this engine's documentation."""

from __future__ import annotations

from ris.export.schemas import SCHEMAS
from ris.export.scope import PROFESSIONAL_RULE, Scope


def readme(scope: Scope, counts: dict[str, int], document_files: int) -> str:
    as_of = scope.as_of
    depth = f"from {scope.since.isoformat()} ({scope.zone}) on" if scope.since else "the whole history"
    whose = (
        f"\n\nIt is limited to one health professional, RPPS {scope.rpps}: {PROFESSIONAL_RULE}. "
        "`manifest.json` says so under `professional`."
        if scope.rpps
        else ""
    )
    rows = "\n".join(
        f"| `{entity}.jsonl` | {counts[entity]} | {SCHEMAS[entity]['description']} | "
        f"`schemas/{entity}.schema.json` |"
        for entity in SCHEMAS
    )
    return f"""# Radiology reports: portability export

Export of the radiology report engine (RIS.PORT.01), taken at {as_of.isoformat()} ({depth}).{whose}
It holds health data: keep it as the originals are kept, and hand it over by a secure channel.

## Files

| File | Lines | Content | JSON Schema (draft 2020-12) |
|---|---|---|---|
{rows}
| `documents/<report id>/v<version>/<document id>.cda.xml` | {document_files} files in all | \
HL7 CDA R2 N1 (CI-SIS CR-IMA), PDF embedded | — |
| `documents/<report id>/v<version>/<document id>.pdf` | | PDF/A-1b, the report as signed | — |
| `manifest.json` | | Format, date, counts and the SHA-256 and size of every other file | — |

Each `.jsonl` file holds one JSON object per line (UTF-8). Dates are ISO 8601 (UTC for instants).
References between files use the ids: `reports.exam.patient_id` → `patients.id`,
`documents.report_id` and `deliveries.report_id` → `reports.id`; `documents.cda_file.path` and
`pdf_file.path` name the document files; `audit.object_type` / `object_id` name the object an event
concerns.

- patients: identity traits as the national INS service returned them, the RNIV status
  (PROV, RECUP, VALI, QUAL) and its history, the patient's refusals of MSSanté channels.
- reports: the current text and status, the exam (accession number, modality, codes), the requester and
  the recipients, and every validated version (text, validator, date, document id).
- deliveries: every send to the DMP, by MSSanté (professionals, patient) and in HL7 to the integration
  platform, with its status timeline (pending, sent, acknowledged, read, failed, blocked).
- audit: every access and change the engine traced (who, what, when), each with its `seal` in the
  trail's hash chain (position, previous hash, hash; null for an entry written seconds before the export).

## Checking the export

`manifest.json` lists every file with its SHA-256: `sha256sum` must give the same values, and each line
of a `.jsonl` file must validate against its schema. The engine checks both with
`ris import-export <folder>`.
"""
