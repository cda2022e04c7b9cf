"""Lexical rules of names (INSi profile, ins.md §2 and §7.3) and the search key of rule 17."""

from __future__ import annotations

import re
import unicodedata

from ris.identity.errors import IdentityRuleError

# Upper case A-Z words joined by one space, one apostrophe, or a single or double hyphen.
NAME_RE = re.compile(r"^[A-Z]+(?:(?:-{1,2}|[' ])[A-Z]+)*$")
MAX_NAME = 100
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss", "’": "'", "‘": "'"})
_IGNORED_IN_SEARCH = re.compile(r"['’\-\s]+")


def strip_diacritics(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def to_insi_form(value: str) -> str:
    """What a user typed, in the INSi lexical form: upper case, no diacritics or ligatures, single spaces."""
    return " ".join(strip_diacritics(value).upper().split())


def check_name(
    field: str, value: str | None, *, rule: str = "INS rule 1", required: bool = True
) -> str | None:
    """Refuse lower case, diacritics, digits and malformed separators; names are stored exactly as checked."""
    if value is None or not value.strip():
        if required:
            raise IdentityRuleError(field, "must not be empty", rule)
        return None
    if len(value) > MAX_NAME:
        raise IdentityRuleError(field, f"at most {MAX_NAME} characters", rule)
    if not NAME_RE.match(value):
        raise IdentityRuleError(
            field,
            "upper case A-Z only, words joined by one space, an apostrophe or a hyphen (no accents, "
            "no lower case, no leading or doubled separators)",
            rule,
        )
    return value


def search_key(value: str | None) -> str:
    """Rule 17: ignore case, accents and diacritics, apostrophes, single or double hyphens (and spaces)."""
    if not value:
        return ""
    return _IGNORED_IN_SEARCH.sub("", strip_diacritics(value).upper())
