"""Errors of the identity module: each names the field and the INS rule it enforces, in the user's terms."""

from __future__ import annotations


class IdentityRuleError(ValueError):
    """Bad input refused by an INS rule; nothing stored was changed."""

    def __init__(self, field: str, message: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        self.reason = message
        super().__init__(f"{field}: {message} ({rule})")


class PermissionDenied(PermissionError):
    """The actor lacks the permission an INS rule asks for (rules 4 and 26)."""

    def __init__(self, actor: str, permission: str, rule: str) -> None:
        self.permission = permission
        super().__init__(f"{actor} lacks permission {permission!r} ({rule})")
