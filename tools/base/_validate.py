"""The validation rules every store shares: what text may be stored, and what counts as a time.

Each raises or reports before anything is written; the memory and the knowledge graph both call these, so a
text or time one of them accepts the other accepts too.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from tools.errors import InvalidInputError

__all__ = ["check_time", "unsafe_character"]

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def unsafe_character(text: str) -> str | None:
    """What makes ``text`` unfit to store as a fact, or ``None``: the one rule for every stored text.

    Refused: NUL and the other control characters except tab, newline and carriage return; the bidi
    embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069), which make a stored fact read
    differently from what it holds; lone surrogates.

    Example:
        >>> unsafe_character("Jane Roe") is None
        True
        >>> unsafe_character("Jane" + chr(0x202E) + "Roe")[:23]
        'the bidi control U+202E'
    """
    for ch in text:
        if ch in _BIDI_CONTROLS:
            return f"the bidi control U+{ord(ch):04X} ({ch!r})"
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in _ALLOWED_CONTROLS:
            return f"the control character U+{ord(ch):04X} ({ch!r})"
        if category == "Cs":
            return f"a lone surrogate U+{ord(ch):04X}"
    return None


def check_time(value: object, what: str) -> datetime:
    """A timezone-aware datetime (naive ones are ambiguous and rejected)."""
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{what} must be timezone-aware (use datetime.now(UTC)), got {value!r}")
    return value
