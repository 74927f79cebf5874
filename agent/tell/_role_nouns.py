"""The role nouns of the schema's phrasings, and a relation read from a noun that is part of a longer one.

Every relation's English cloze templates and statement phrasings name it with a noun: "The CEO of {} is",
"{}'s mother tongue is", "A PhD student of {} was". The learned reader reads "Aletta Jacobs' mother tongue
was Frisian." as a mother (it knows "mother", and the schema's "mother tongue" phrasing says "is", not "was").
:func:`shadowed_by` finds such a reading: every role noun of the read relation the sentence holds is part of a
longer role noun of one other relation ("mother" in "mother tongue"); the interpreter then offers that
relation back instead of applying the reading. Nothing about relations is hard-coded: the nouns come from the
schema file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from kg import Schema

__all__ = ["role_nouns", "shadowed_by"]

_NOUN_OF = re.compile(r"^(?:the|a|an) (?P<noun>[a-z][a-z -]*?) of \{\}", re.IGNORECASE)
_POSSESSED = re.compile(r"^(?:the name of )?\{\}'s (?P<noun>[a-z][a-z -]*?) (?:is|was|are|were)\b", re.IGNORECASE)


def role_nouns(schema: Schema, phrasings: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """Relation id -> the nouns its English phrasings name it with ("CEO", "chief executive officer", ...),
    lower-cased, longest first."""
    extra = phrasings or {}
    out: dict[str, tuple[str, ...]] = {}
    for spec in schema.relations:
        nouns: set[str] = set()
        for template in (*spec.templates, *extra.get(spec.id, ())):
            if not template.isascii():
                continue
            match = _POSSESSED.match(template) or _NOUN_OF.match(template)
            if match is not None:
                nouns.add(match.group("noun").strip().casefold())
        out[spec.id] = tuple(sorted(nouns, key=lambda n: (-len(n), n)))
    return out


def shadowed_by(sentence: str, read: str, nouns: Mapping[str, Sequence[str]]) -> str | None:
    """The one other relation whose longer role noun holds every role noun of ``read`` the sentence names
    ("mother" in "mother tongue": ``person_native_language`` for ``person_mother``), else ``None`` (also when
    the sentence names none of ``read``'s nouns: the reader read it from a verb)."""
    text = sentence.casefold()
    own = _spans(text, nouns.get(read, ()))
    if not own:
        return None
    found = None
    for relation, theirs in nouns.items():
        if relation == read:
            continue
        longer = _spans(text, theirs)
        if longer and all(any(a <= s and e <= b and (a, b) != (s, e) for a, b in longer) for s, e in own):
            if found is not None:
                return None  # two candidates: no single reading to offer
            found = relation
    return found


def _spans(text: str, nouns: Sequence[str]) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for n in nouns for m in re.finditer(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]
