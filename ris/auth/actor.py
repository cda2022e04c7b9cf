"""Who acts, and whether they may: the RPPS of the professional logged in with Pro Santé Connect, else the
id the user declared (`--by`) where the site allows declared actors (RIS_DECLARED_ACTORS=allowed) or the
demo folder's allowance names it; then that user must be one of the engine's users holding the permission
the action needs (`authorize`, the one check every acting command makes before it changes anything)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from ris.auth import demo_users, login, tokens, users
from ris.auth.settings import PscSettings, declared_actors_allowed
from ris.site.engine import EngineConfig
from ris.store.db import get_engine


class ActorRefused(ValueError):
    pass


@dataclass(frozen=True)
class ActingProfessional:
    rpps: str  # the user's id: the RPPS of a professional, else their ADELI number or local id
    method: str  # "psc" (authenticated), "declared" (the site allows --by) or "demo" (the demo allowance)
    permissions: frozenset[str] = field(default_factory=frozenset)


def acting_professional(
    declared: str | None, data_dir: Path, database_url: str | None = None
) -> ActingProfessional:
    settings = PscSettings.from_env()
    logged_in, why_not = None, None
    if settings is not None:
        try:
            logged_in = login.current(settings, data_dir)
        except tokens.TokenRejected as exc:
            why_not = f"the Pro Santé Connect login is no longer valid ({exc})"
    if logged_in is not None:
        if declared and declared != logged_in.rpps:
            raise ActorRefused(
                f"--by {declared}: differs from the logged-in professional's RPPS {logged_in.rpps}"
            )
        return ActingProfessional(logged_in.rpps, "psc")
    url = database_url or EngineConfig.from_env().database_url
    if declared and demo_users.allows(data_dir, url, declared):
        return ActingProfessional(declared, "demo")
    if not declared_actors_allowed():
        raise ActorRefused(
            f"{why_not or 'nobody is logged in'}: log in with `ris login` (this site refuses --by)"
        )
    if not declared:
        raise ActorRefused(
            f"--by: give the acting RPPS, or log in with `ris login`{f'; {why_not}' if why_not else ''}"
        )
    return ActingProfessional(declared, "declared")


def authorize(
    declared: str | None, permission: str, config: EngineConfig | None = None
) -> ActingProfessional:
    """The acting user, when they may do what `permission` names; ActorRefused (nobody proven, RIS.PSC.01)
    or users.PermissionRefused (not a user, or lacking the permission) otherwise, each one line."""
    config = config or EngineConfig.from_env()
    acting = acting_professional(declared, config.data_dir, config.database_url)
    with Session(get_engine(config.database_url)) as session:  # a read: no write lock on SQLite
        allowed = users.require(session, acting.rpps, permission)
    return ActingProfessional(acting.rpps, acting.method, allowed)
