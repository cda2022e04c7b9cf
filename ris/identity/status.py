"""RNIV statuses (ins.md §4): which status an identity earns, and where a downgrade lands."""

from __future__ import annotations

from ris.store.models import IdentityStatus

# Strict traits (ins.md §2): read-only on RECUP/QUAL (rule 26); changing one downgrades (rule 27).
STRICT_TRAITS = (
    "ins_matricule",
    "ins_oid",
    "birth_name",
    "birth_given_names",
    "first_birth_given_name",
    "birth_date",
    "sex",
    "birth_place_code",
)
COMPLEMENTARY_TRAITS = ("used_name", "used_given_name", "street", "postal_code", "city")
# The attributes of rule 25 that demote the identity and block INSi; "homonyme" does neither.
BLOCKING_ATTRIBUTES = frozenset({"douteuse", "fictive"})
ATTRIBUTES = frozenset({"douteuse", "fictive", "homonyme"})


def earned_status(*, from_insi: bool, high_confidence_checked: bool) -> IdentityStatus:
    """Rule 20: the status is a function of two facts only."""
    if from_insi:
        return IdentityStatus.QUAL if high_confidence_checked else IdentityStatus.RECUP
    return IdentityStatus.VALI if high_confidence_checked else IdentityStatus.PROV


def after_strict_trait_change(status: IdentityStatus) -> IdentityStatus:
    """Rule 27: RECUP -> PROV, QUAL -> VALI; PROV and VALI hold no INS and keep their status."""
    return {IdentityStatus.RECUP: IdentityStatus.PROV, IdentityStatus.QUAL: IdentityStatus.VALI}.get(
        status, status
    )


def holds_insi_traits(status: IdentityStatus) -> bool:
    return status in (IdentityStatus.RECUP, IdentityStatus.QUAL)


def insi_blocked(attributes: list[str] | None) -> bool:
    """Rule 25: a doubtful or fictitious identity never calls INSi."""
    return bool(BLOCKING_ATTRIBUTES.intersection(attributes or ()))
