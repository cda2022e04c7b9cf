"""The one permission check of every acting command: who acts (the Pro Santé Connect login, or `--by`
where the site or the demo folder allows it) and whether that user holds the permission the action needs.
A refusal is one line naming the user and the missing permission; the command stops before it changes
anything."""

from __future__ import annotations

import typer

from cli.common import fail
from ris.auth.actor import ActingProfessional, ActorRefused, authorize
from ris.auth.settings import AuthConfigError
from ris.auth.tokens import ProviderUnreachable, TokenRejected
from ris.auth.users import PermissionRefused


def acting(declared: str | None, permission: str) -> ActingProfessional:
    try:
        return authorize(declared, permission)
    except (ActorRefused, PermissionRefused, AuthConfigError, TokenRejected, ProviderUnreachable) as exc:
        fail(str(exc))


def by_option(who: str = "who acts") -> typer.models.OptionInfo:
    """`--by`: the acting user's id when nobody is logged in (`ris login`)."""
    return typer.Option(None, "--by", help=f"{who} (RPPS or user id); default: the `ris login` RPPS")
