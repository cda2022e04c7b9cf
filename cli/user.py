"""`ris user`: the engine's users and their roles (habilitations, RIS.INS.05-06): the first administrator
by an explicit bootstrap, then users added and roles granted or revoked by an administrator, every change
audited with who and why."""

from __future__ import annotations

import typer
from sqlmodel import Session

from cli.acting import acting, by_option
from cli.common import fail, print_json
from ris.auth import users
from ris.auth.roles import ROLES, USERS_MANAGE
from ris.store.db import get_engine, in_unit_of_work, require_current
from ris.store.models import UserKind

app = typer.Typer(help="Users and roles: who may act through the engine.", no_args_is_help=True)
Reason = typer.Option(None, "--reason", help="Why (required, audited)")
ROLE_NAMES = ", ".join(ROLES)
AdminBy = by_option("The administrator")


def _change(work) -> object:
    try:
        return in_unit_of_work(work)
    except users.UserRuleError as exc:
        fail(str(exc))


@app.command()
def bootstrap(
    user_id: str = typer.Argument(..., metavar="ID", help="RPPS, ADELI number or local id"),
    name: str | None = typer.Option(None, "--name", help="How colleagues know them"),
    reason: str | None = Reason,
) -> None:
    """Create the first administrator (the site's responsable de traitement or their delegate); refused as
    soon as an administrator exists."""
    require_current()
    _change(lambda session: users.bootstrap(session, user_id, name=name, reason=reason))
    typer.echo(f"user {user_id} is the first administrator")


@app.command()
def add(
    user_id: str = typer.Argument(..., metavar="ID", help="RPPS (11 digits), ADELI (9) or local id"),
    role: list[str] = typer.Option([], "--role", help=f"A role to grant: {ROLE_NAMES}"),
    kind: UserKind | None = typer.Option(None, "--kind", help="Default: told by the id's form"),
    name: str | None = typer.Option(None, "--name", help="How colleagues know them"),
    reason: str | None = Reason,
    by: str | None = AdminBy,
) -> None:
    """Add a user, with the roles given."""
    admin = acting(by, USERS_MANAGE).rpps
    _change(
        lambda session: users.add(session, admin, user_id, kind=kind, name=name, roles=role, reason=reason)
    )
    typer.echo(
        f"user {user_id} added" + (f" with {', '.join(sorted(set(role)))}" if role else ", no role yet")
    )


@app.command()
def grant(
    user_id: str = typer.Argument(..., metavar="ID"),
    role: str = typer.Argument(..., help=f"One of {ROLE_NAMES}"),
    reason: str | None = Reason,
    by: str | None = AdminBy,
) -> None:
    """Grant a role."""
    admin = acting(by, USERS_MANAGE).rpps
    done = _change(lambda session: users.grant(session, admin, user_id, role, reason=reason))
    typer.echo(f"user {user_id}: {role} granted" if done else f"user {user_id} holds {role} already")


@app.command()
def revoke(
    user_id: str = typer.Argument(..., metavar="ID"),
    role: str = typer.Argument(...),
    reason: str | None = Reason,
    by: str | None = AdminBy,
) -> None:
    """Revoke a role (the last administrator keeps theirs)."""
    admin = acting(by, USERS_MANAGE).rpps
    done = _change(lambda session: users.revoke(session, admin, user_id, role, reason=reason))
    typer.echo(f"user {user_id}: {role} revoked" if done else f"user {user_id} does not hold {role}")


@app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every user and their roles."""
    require_current()
    with Session(get_engine()) as session:
        rows = users.listing(session)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['id']:<14} {row['kind']:<6} {', '.join(row['roles']) or '(no role)'}  {row['name'] or ''}"
        )
    typer.echo(f"{len(rows)} user{'' if len(rows) == 1 else 's'}")


@app.command()
def show(
    user_id: str = typer.Argument(..., metavar="ID"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """One user: roles and the permissions they give."""
    require_current()
    with Session(get_engine()) as session:
        try:
            view = users.view(session, user_id)
        except users.UserRuleError as exc:
            fail(str(exc))
    if as_json:
        print_json(view)
        return
    typer.echo(f"user {view['id']} ({view['kind']}) {view['name'] or ''}".rstrip())
    typer.echo(f"  roles:       {', '.join(view['roles']) or '(none)'}")
    typer.echo(f"  permissions: {', '.join(view['permissions']) or '(none)'}")
    typer.echo(f"  added {view['created_at']} by {view['created_by']}")


@app.command()
def roles() -> None:
    """The roles a site grants and the permissions each gives."""
    for role, allowed in ROLES.items():
        typer.echo(f"{role:<18} {', '.join(sorted(allowed))}")
