"""Who acts on identities, and the fine-grained permissions the INS rules ask for (rules 4 and 26).

An actor carries the permissions its user's roles give (ris.auth.roles, the engine's users); the identity
functions check the permission named here on each call."""

from __future__ import annotations

from dataclasses import dataclass, field

from ris.identity.errors import PermissionDenied

INS_READ = "ins.read"  # see the matricule INS and its OID (rule 4, RIS.INS.05)
INSI_CALL = "insi.call"  # call the INSi teleservice (rule 4, RIS.INS.06)
IDENTITY_WRITE = "identity.write"  # create and edit identities
SUPERUSER = "identity.superuser"  # edit strict traits of RECUP/QUAL identities (rule 26)
OPERATOR = frozenset({INS_READ, INSI_CALL, IDENTITY_WRITE})


@dataclass(frozen=True)
class Actor:
    id: str
    permissions: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str, rule: str) -> None:
        if permission not in self.permissions:
            raise PermissionDenied(self.id, permission, rule)


ENGINE = Actor("engine", OPERATOR)  # automatic steps of the lifecycle and the PAM feed
