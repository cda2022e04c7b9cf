"""INS rule 28 when a document leaves: an INS leaves only with a qualified identity. The stored CDA was
built when the identity lent its INS; if the identity is no longer qualified, that CDA is rebuilt without
the INS before any channel sends it (the stored one never left)."""

from __future__ import annotations

from sqlmodel import Session

from ris.documents.cda import carries_ins
from ris.identity.gate import ins_refusal_reason
from ris.store import blobs
from ris.store import documents as stored_documents
from ris.store.reports import ReportBundle

REBUILD_REASON = "identity no longer qualified at send time (INS rule 28)"


def must_rebuild(session: Session, bundle: ReportBundle) -> bool:
    """Whether the version's stored CDA carries an INS its identity may no longer lend (False while no
    CDA is stored: there is nothing to rebuild yet)."""
    if ins_refusal_reason(bundle.patient) is None:
        return False
    document = stored_documents.find(session, bundle.report.id, bundle.version.version)
    return document is not None and carries_ins(blobs.get(session, document.cda_sha256))
