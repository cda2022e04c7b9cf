"""Habilitations (RNIV rules 1, 3, 4, 17; RIS.INS.05-06): the named permissions the engine's actions need,
and the roles the site's responsable de traitement grants, each a fixed set of permissions.

Roles are code, not data: a site grants and revokes roles (`ris user grant|revoke`), and what a role
allows is the same everywhere and reviewed here. A user holds any number of roles.
"""

from __future__ import annotations

from ris.identity.actors import IDENTITY_WRITE, INS_READ, INSI_CALL, SUPERUSER

REPORT_VALIDATE = "report.validate"  # legal authentication of a version (and of its replacement)
REPORT_ANNOUNCE = "report.announce"  # record "annonce réalisée"
REPORT_REPLACE = "report.replace"  # validate a corrected text as version n+1
REPORT_DELETE = "report.delete"  # withdraw a validated report
REPORT_EDIT = "report.edit"  # drafts, provisional status, per-report refusal overrides and flags
PATIENT_REFUSAL = "patient.refusal"  # record a patient's refusal of an MSSanté channel
IDENTITY_WORKLIST = "identity.worklist"  # resolve the identity-vigilance worklist
DELIVERY_RETRY = "delivery.retry"  # send failed deliveries again
REPORT_SEND = "report.send"  # send a validated report to a professional of one's choice (RIS.MSS.20)
EXPORT = "export"  # the portability export (the whole history)
CONFIGURE = "configure"  # site settings and endpoint blocks, directory imports
WORKLIST_LOAD = "worklist.load"  # bring patients, exams and reports in from a worklist file
CONTEXT_CALL = "context.call"  # open the DMP or the viewer in the patient's context (the INS in the URL)
USERS_MANAGE = "users.manage"  # add users, grant and revoke roles

PERMISSIONS = (
    REPORT_VALIDATE,
    REPORT_ANNOUNCE,
    REPORT_REPLACE,
    REPORT_DELETE,
    REPORT_EDIT,
    PATIENT_REFUSAL,
    INS_READ,
    INSI_CALL,
    IDENTITY_WRITE,
    SUPERUSER,
    IDENTITY_WORKLIST,
    DELIVERY_RETRY,
    REPORT_SEND,
    EXPORT,
    CONFIGURE,
    WORKLIST_LOAD,
    CONTEXT_CALL,
    USERS_MANAGE,
)

ADMINISTRATOR = "administrator"
ROLES: dict[str, frozenset[str]] = {
    # Authenticates, announces, corrects and withdraws reports; reads the INS of the patients they report on.
    "radiologist": frozenset(
        {
            REPORT_VALIDATE,
            REPORT_ANNOUNCE,
            REPORT_REPLACE,
            REPORT_DELETE,
            REPORT_EDIT,
            PATIENT_REFUSAL,
            INS_READ,
            INSI_CALL,
            IDENTITY_WRITE,
            CONTEXT_CALL,
            REPORT_SEND,
        }
    ),
    # Welcomes patients: identities (INSi included), their refusals, the worklist files; no report action.
    "secretary": frozenset(
        {INS_READ, INSI_CALL, IDENTITY_WRITE, PATIENT_REFUSAL, REPORT_EDIT, WORKLIST_LOAD, REPORT_SEND}
    ),
    # Référent en identitovigilance: the worklist, and the strict traits of a retrieved identity (rule 26).
    "identity-referent": frozenset({INS_READ, INSI_CALL, IDENTITY_WRITE, SUPERUSER, IDENTITY_WORKLIST}),
    # Runs the site: users, configuration, retries, exports; sees no INS by this role alone.
    ADMINISTRATOR: frozenset({USERS_MANAGE, CONFIGURE, DELIVERY_RETRY, EXPORT, WORKLIST_LOAD}),
}


class UnknownRole(ValueError):
    pass


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UnknownRole(f"role {role!r}: one of {', '.join(ROLES)}")
    return role


def permissions_of(roles: list[str] | set[str] | tuple[str, ...]) -> frozenset[str]:
    """What the roles allow together (a role the code no longer knows allows nothing)."""
    return frozenset().union(*(ROLES.get(role, frozenset()) for role in roles))


def roles_granting(permission: str) -> list[str]:
    return [role for role, allowed in ROLES.items() if permission in allowed]
