"""The demo's own users, and the demo allowance: in a demo folder, `--by` one of the demo's radiologists
is accepted without a login even though declared actors are refused (RIS_DECLARED_ACTORS), so that scripts
and tests that drive a demo keep working.

The allowance is a file `ris demo` writes into its own folder, naming the demo's database; it is honoured
only when the engine works on that very SQLite file inside that folder. A site's database (PostgreSQL, or
a SQLite file the demo did not create) never matches it. The permission checks stay on: the demo's users
hold roles like anyone else's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlmodel import Session

from ris.auth import users
from ris.operations.demo import RADIOLOGISTS
from ris.store import audit
from ris.store.models import RisUser

ALLOWANCE = "demo-actors.json"
DEMO = "demo"  # who sets the demo's users up, in the audit trail
# The first radiologist also runs the demo site (users, retries, exports) and its identity vigilance.
ROLES = {
    RADIOLOGISTS[0]["rpps"]: ("radiologist", "identity-referent", "administrator"),
    RADIOLOGISTS[1]["rpps"]: ("radiologist",),
}


def _names() -> dict[str, str]:
    return {r["rpps"]: f"{r['given']} {r['family']}" for r in RADIOLOGISTS}


def demo_database(data_dir: Path) -> str:
    """The demo's database URL: the SQLite file of its folder."""
    return f"sqlite:///{data_dir / 'ris.db'}"


def set_up(session: Session, data_dir: Path, database_url: str) -> list[str]:
    """The demo's users with their roles (kept when already there), and the allowance in `data_dir` for
    them; returns their ids. `database_url` must be the demo's own SQLite file in `data_dir`."""
    if database_url != demo_database(data_dir):
        raise ValueError(f"the demo allowance is for the demo's own database ({demo_database(data_dir)})")
    why = "the demo's users"
    for rpps, roles in ROLES.items():
        if session.get(RisUser, rpps) is None:
            users.add(session, DEMO, rpps, name=_names()[rpps], roles=roles, reason=why)
        else:
            for role in roles:
                users.grant(session, DEMO, rpps, role, reason=why)
    audit.record(
        session,
        actor=DEMO,
        action="auth.demo_allowance",
        object_type="folder",
        object_id=data_dir.name[:64],
        actors=sorted(ROLES),
    )
    path = data_dir / ALLOWANCE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"database": database_url, "actors": sorted(ROLES)}, out)
    return sorted(ROLES)


def allows(data_dir: Path, database_url: str, declared: str) -> bool:
    """Whether this folder's demo allowance accepts `--by declared` on this database."""
    if database_url != demo_database(data_dir):
        return False
    try:
        allowance = json.loads((data_dir / ALLOWANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return allowance.get("database") == database_url and declared in allowance.get("actors", [])
