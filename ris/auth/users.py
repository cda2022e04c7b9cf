"""The engine's users and the roles they hold (RIS.INS.05-06, .17): added, granted and revoked by an
administrator, each change audited with who and why; the first administrator comes from an explicit
bootstrap. `require` is the one permission check every acting command goes through.

Functions flush but never commit: the caller's unit of work decides, so a refused change leaves nothing.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, select

from ris.auth.roles import ADMINISTRATOR, UnknownRole, check_role, permissions_of, roles_granting
from ris.store import audit
from ris.store.models import RisUser, UserKind, UserRole

ID_PATTERNS = {
    UserKind.rpps: re.compile(r"^\d{11}$"),
    UserKind.adeli: re.compile(r"^(\d{9}|2[AB]\d{7})$"),
    UserKind.local: re.compile(r"^[a-z][a-z0-9._-]{1,31}$"),
}
ID_RULE = (
    "an RPPS (11 digits), an ADELI number (9 characters) or a local id (2 to 32 lower-case letters, "
    "digits, '.', '_' or '-', starting with a letter)"
)
REASON_MAX = 200


class UserRuleError(ValueError):
    """Bad input for a user change: names the field and the rule; nothing was changed."""


class PermissionRefused(PermissionError):
    """The acting user may not do this: one line naming the user and the missing permission."""


def kind_of(user_id: str, kind: UserKind | None = None) -> UserKind:
    """The kind the id has (or must have, when given); UserRuleError when it fits none."""
    for candidate in [kind] if kind else list(UserKind):
        if ID_PATTERNS[candidate].match(user_id):
            return candidate
    expected = f"a {kind.value} id" if kind else ID_RULE
    raise UserRuleError(f"user id {user_id!r}: must be {expected}")


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise UserRuleError("--reason: why the change is made is required (audit trail)")
    if len(text) > REASON_MAX:
        raise UserRuleError(f"--reason: at most {REASON_MAX} characters")
    return text


def _check_name(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    if len(name.strip()) > 100:
        raise UserRuleError("--name: at most 100 characters")
    return name.strip()


def roles_of(session: Session, user_id: str) -> list[str]:
    return sorted(session.exec(select(UserRole.role).where(UserRole.user_id == user_id)).all())


def administrators(session: Session) -> list[str]:
    return list(session.exec(select(UserRole.user_id).where(UserRole.role == ADMINISTRATOR)).all())


def require(session: Session, user_id: str, permission: str) -> frozenset[str]:
    """The user's permissions when they include `permission`; PermissionRefused otherwise (one line)."""
    if session.get(RisUser, user_id) is None:
        raise PermissionRefused(
            f"{user_id}: not a user of this engine; an administrator adds users (`ris user add`)"
        )
    roles = roles_of(session, user_id)
    allowed = permissions_of(roles)
    if permission not in allowed:
        held = ", ".join(roles) or "no role"
        raise PermissionRefused(
            f"{user_id} lacks the permission {permission} (holds {held}; granted by the role "
            f"{' or '.join(roles_granting(permission))}: `ris user grant`)"
        )
    return allowed


def _get(session: Session, user_id: str) -> RisUser:
    user = session.get(RisUser, user_id)
    if user is None:
        raise UserRuleError(f"user {user_id}: not a user of this engine (`ris user list`)")
    return user


def _grant(session: Session, by: str, user_id: str, role: str, reason: str) -> bool:
    if session.get(UserRole, (user_id, role)) is not None:
        return False
    session.add(UserRole(user_id=user_id, role=role, granted_by=by))
    audit.record(
        session,
        actor=by,
        action="user.grant",
        object_type="user",
        object_id=user_id,
        role=role,
        reason=reason,
    )
    return True


def bootstrap(session: Session, user_id: str, *, name: str | None, reason: str | None) -> RisUser:
    """The first administrator: refused once any user holds the role (from then on administrators add
    and grant). The user acts as their own grantor; the audit trail also keeps the OS account."""
    why = check_reason(reason)
    if held := administrators(session):
        raise UserRuleError(
            f"bootstrap: {held[0]} is already an administrator; an administrator grants the role "
            "(`ris user grant ID administrator`)"
        )
    kind = kind_of(user_id)
    user = session.get(RisUser, user_id)
    if user is None:
        user = RisUser(id=user_id, kind=kind, name=_check_name(name), created_by=user_id)
        session.add(user)
        session.flush()
    audit.record(
        session,
        actor=user_id,
        action="user.bootstrap",
        object_type="user",
        object_id=user_id,
        kind=kind.value,
        reason=why,
    )
    _grant(session, user_id, user_id, ADMINISTRATOR, why)
    session.flush()
    return user


def add(
    session: Session,
    by: str,
    user_id: str,
    *,
    kind: UserKind | None = None,
    name: str | None = None,
    roles: list[str] | tuple[str, ...] = (),
    reason: str | None,
) -> RisUser:
    why = check_reason(reason)
    kind = kind_of(user_id, kind)
    try:
        chosen = sorted({check_role(r) for r in roles})
    except UnknownRole as exc:
        raise UserRuleError(f"--role: {exc}") from exc
    if session.get(RisUser, user_id) is not None:
        raise UserRuleError(f"user {user_id}: exists already (`ris user grant` gives another role)")
    user = RisUser(id=user_id, kind=kind, name=_check_name(name), created_by=by)
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="user.add",
        object_type="user",
        object_id=user_id,
        kind=kind.value,
        reason=why,
    )
    for role in chosen:
        _grant(session, by, user_id, role, why)
    session.flush()
    return user


def grant(session: Session, by: str, user_id: str, role: str, *, reason: str | None) -> bool:
    """True when granted, False when the user held it already (nothing recorded)."""
    why = check_reason(reason)
    _get(session, user_id)
    try:
        check_role(role)
    except UnknownRole as exc:
        raise UserRuleError(str(exc)) from exc
    done = _grant(session, by, user_id, role, why)
    session.flush()
    return done


def revoke(session: Session, by: str, user_id: str, role: str, *, reason: str | None) -> bool:
    """True when revoked, False when the user did not hold it. The last administrator keeps the role:
    otherwise nobody could manage users any more but through a new bootstrap."""
    why = check_reason(reason)
    _get(session, user_id)
    held = session.get(UserRole, (user_id, role))
    if held is None:
        return False
    if role == ADMINISTRATOR and administrators(session) == [user_id]:
        raise UserRuleError(
            f"revoke: {user_id} is the last administrator; grant the role to someone else first"
        )
    session.delete(held)
    audit.record(
        session, actor=by, action="user.revoke", object_type="user", object_id=user_id, role=role, reason=why
    )
    session.flush()
    return True


def view(session: Session, user_id: str) -> dict[str, Any]:
    user = _get(session, user_id)
    roles = roles_of(session, user_id)
    return {
        "id": user.id,
        "kind": user.kind.value,
        "name": user.name,
        "roles": roles,
        "permissions": sorted(permissions_of(roles)),
        "created_at": user.created_at.isoformat(timespec="seconds"),
        "created_by": user.created_by,
    }


def listing(session: Session) -> list[dict[str, Any]]:
    users = session.exec(select(RisUser).order_by(RisUser.id)).all()
    held: dict[str, list[str]] = {}
    for row in session.exec(select(UserRole).order_by(UserRole.role)).all():
        held.setdefault(row.user_id, []).append(row.role)
    return [{"id": u.id, "kind": u.kind.value, "name": u.name, "roles": held.get(u.id, [])} for u in users]
