"""The hash chain over the audit trail: each entry's hash covers its content and the previous entry's
hash, so a row rewritten, deleted, inserted or moved by any means (plain SQL included) breaks the chain.

The digest format is part of the stored data: migration 0010 chains the entries written before it with
this same function. Never change it; a new format needs a new column and a migration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

GENESIS = ""  # prev_hash of the first entry


def _instant(at: dt.datetime) -> str:
    # SQLite and a PostgreSQL `timestamp` give the value back without its zone: it is UTC
    aware = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def entry_digest(
    prev_hash: str,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any] | None,
    os_user: str | None,
    host: str | None,
) -> str:
    content = [_instant(at), actor, action, object_type, object_id, detail or {}, os_user, host]
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()
