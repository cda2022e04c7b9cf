"""Who acts: the RPPS of the professional logged in with Pro Santé Connect, else the RPPS the user declared
(`--by`) when the site allows declared actors. The CLI asks here before validate, announce, replace and
delete, so that the audit trail records the authenticated RPPS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ris.auth import login, tokens
from ris.auth.settings import PscSettings, declared_actors_allowed


class ActorRefused(ValueError):
    pass


@dataclass(frozen=True)
class ActingProfessional:
    rpps: str
    method: str  # "psc" (authenticated) or "declared"


def acting_professional(declared: str | None, data_dir: Path) -> ActingProfessional:
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
    if not declared_actors_allowed():
        raise ActorRefused(
            f"{why_not or 'nobody is logged in'}: log in with `ris login` (this site refuses --by)"
        )
    if not declared:
        raise ActorRefused(
            f"--by: give the acting RPPS, or log in with `ris login`{f'; {why_not}' if why_not else ''}"
        )
    return ActingProfessional(declared, "declared")
