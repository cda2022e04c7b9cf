"""What text the engine takes in from people and peers, stated once.

A field that ends in a mail header or in a one-line protocol field (a name, a title, an exam label, an
address, an identifier...) holds no control character: a CR or LF there would end a header or a segment
early (a header injected into the mail, a mail that cannot be built at all), a NUL is refused by
PostgreSQL and by XML. Free text (a report's body and conclusion) may hold line breaks and tabs, nothing
else of the kind. Control characters are Unicode's `Cc` (U+0000-U+001F, U+007F-U+009F); a one-line field
refuses the Unicode line and paragraph separators (U+2028, U+2029) too. Refused at intake, with the field
named by the caller: nothing is stored.
"""

from __future__ import annotations

import re

_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def line_problem(text: str) -> str | None:
    """Why `text` cannot be a one-line field (None when it can)."""
    if found := _IN_A_LINE.search(text):
        return (
            f"holds a control character (U+{ord(found.group()):04X}): one line of text, no CR, LF, tab or NUL"
        )
    return None


def free_text_problem(text: str) -> str | None:
    """Why `text` cannot be free text (None when it can): line breaks and tabs only."""
    if found := _IN_FREE_TEXT.search(text):
        return (
            f"holds a control character (U+{ord(found.group()):04X}): text may hold line breaks and tabs only"
        )
    return None


def one_line(value: str) -> str:
    """A pydantic validator (`AfterValidator(one_line)`): the field is one line of text."""
    if problem := line_problem(value):
        raise ValueError(problem)
    return value


def free_text(value: str) -> str:
    """A pydantic validator (`AfterValidator(free_text)`): the field is free text."""
    if problem := free_text_problem(value):
        raise ValueError(problem)
    return value
