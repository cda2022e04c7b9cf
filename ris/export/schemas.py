"""The JSON Schema of each JSON Lines file of an export, derived from the store's tables so that they can
never drift apart: one object per line, every column of the row plus the nested history it owns."""

from __future__ import annotations

from typing import Any

from sqlmodel import SQLModel

from ris.store.models import (
    AuditEntry,
    AuditSeal,
    Correspondent,
    Delivery,
    DeliveryEvent,
    Document,
    Exam,
    IdentityStatusChange,
    Patient,
    PatientRefusal,
    Report,
    ReportRecipient,
    ReportVersion,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"
FILE_REF = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "description": "Path of the file inside the export"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 0},
    },
    "required": ["path", "sha256", "size"],
    "additionalProperties": False,
}


def _object(model: type[SQLModel], defs: dict[str, Any]) -> dict[str, Any]:
    """The row's schema, closed (every column present, nothing else); its $defs moved to `defs`."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(schema.pop("$defs", {}))
    schema["required"] = list(schema["properties"])
    schema["additionalProperties"] = False
    return schema


def _line(
    model: type[SQLModel], description: str, **nested: dict[str, Any] | type[SQLModel] | tuple
) -> dict[str, Any]:
    """A line: the row of `model` plus nested members; a model alone is a list of its rows, a
    (model,) tuple one row or null, a dict a literal schema."""
    defs: dict[str, Any] = {}
    schema = _object(model, defs)
    for name, member in nested.items():
        if isinstance(member, dict):
            schema["properties"][name] = member
        elif isinstance(member, tuple):
            schema["properties"][name] = {"anyOf": [_object(member[0], defs), {"type": "null"}]}
        else:
            schema["properties"][name] = {"type": "array", "items": _object(member, defs)}
        schema["required"].append(name)
    schema.update({"$schema": DRAFT, "title": model.__name__, "description": description})
    if defs:
        schema["$defs"] = defs
    return schema


def _recipient() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    schema = _object(ReportRecipient, defs)
    schema["properties"]["correspondent"] = _object(Correspondent, defs)
    schema["required"].append("correspondent")
    return schema


# entity -> schema, in the order the export writes them (each refers only to what came before).
SCHEMAS: dict[str, dict[str, Any]] = {
    "patients": _line(
        Patient,
        "A patient's identity (INS traits, RNIV status, address) with its status history (rule 21) and "
        "its refusals of MSSanté channels.",
        status_history=IdentityStatusChange,
        refusals=PatientRefusal,
    ),
    "reports": _line(
        Report,
        "A report with its exam, its requester, its recipients and every validated version.",
        exam=_object(Exam, {}),
        requester=(Correspondent,),
        recipients={"type": "array", "items": _recipient()},
        versions=ReportVersion,
    ),
    "documents": _line(
        Document,
        "The documents built for one report version: the CDA R2 N1 and the PDF/A-1 it embeds, as files.",
        cda_file=FILE_REF,
        pdf_file=FILE_REF,
    ),
    "deliveries": _line(
        Delivery,
        "One send of one version to one recipient over one channel, with its status timeline.",
        timeline=DeliveryEvent,
    ),
    "audit": _line(
        AuditEntry,
        "The audit trail: who did what to which object, and when, with the entry's seal in the hash chain "
        "(null while it awaits sealing).",
        seal=(AuditSeal,),
    ),
}
ENTITIES = tuple(SCHEMAS)
