"""Pronouns that stand for a name said earlier in the same message.

"Honda no longer makes the Acura TL. It is made by Toyota now." states a fact about the Acura TL, but read alone
the second sentence is about an entity called "It". :func:`has_pronoun` finds a personal or possessive pronoun in
a sentence and :func:`with_antecedent` puts a name in its place ("Its CEO is Jane Roe." -> "Honda's CEO is Jane
Roe."); the interpreter tries the names of the earlier sentences, most recent first, and keeps the first reading
whose names fit the relation's classes (:mod:`agent.tell._types`), so "it" above is the Acura TL (a product)
rather than Honda (a company). :func:`is_pronoun` keeps a pronoun from ever being stored as a name, and
:func:`pronoun_kind` says whether the first pronoun stands for a person ("she") or a thing ("it"): a name known
only as classes that do not fit it is never tried (:func:`pronoun_fits`: "she" is no company).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Literal

from kg import Schema

__all__ = [
    "PERSON_CLASS",
    "PronounKind",
    "has_pronoun",
    "is_pronoun",
    "pronoun_fits",
    "pronoun_kind",
    "with_antecedent",
]

PERSON_CLASS = "Person"  # the schema's class (``fa:Person``) a person pronoun stands for

PronounKind = Literal["person", "thing"]

_PLAIN = ("it", "he", "she", "they", "him", "her", "them")
_POSSESSIVE = ("its", "his", "their")  # "her" is read as the object pronoun first, then as a possessive
_PRONOUN = re.compile(r"\b(it|he|she|they|him|her|them|its|his|their)\b", re.IGNORECASE)
_KINDS: dict[str, PronounKind] = {
    "he": "person", "she": "person", "him": "person", "her": "person", "his": "person", "it": "thing", "its": "thing",
}  # fmt: skip
_NAMES = set(_PLAIN) | set(_POSSESSIVE) | {"this company", "the company", "this person", "that company"}


def is_pronoun(name: str) -> bool:
    """``name`` is a pronoun, not a name ("It", "they", "this company")."""
    return name.strip().casefold() in _NAMES


def pronoun_kind(sentence: str) -> PronounKind | None:
    """What the sentence's first pronoun (the one :func:`with_antecedent` replaces) stands for: ``"person"``
    (he, she, him, her, his), ``"thing"`` (it, its), ``None`` for "they" / "them" / "their" or no pronoun."""
    match = _PRONOUN.search(sentence)
    return None if match is None else _KINDS.get(match.group(1).casefold())


def pronoun_fits(schema: Schema, classes: Collection[str], kind: PronounKind) -> bool:
    """Whether an entity known as ``classes`` (the schema's local class names; empty: unknown) can be what a
    pronoun of ``kind`` stands for: for a person, some class not disjoint from :data:`PERSON_CLASS` (a
    fictional character may be one); for a thing, some class other than it."""
    if not classes:
        return True
    if kind == "person":
        return any(c == PERSON_CLASS or not schema.disjoint(c, PERSON_CLASS) for c in classes)
    return any(c != PERSON_CLASS for c in classes)


def has_pronoun(sentence: str) -> bool:
    """The sentence holds a personal or possessive pronoun."""
    return _PRONOUN.search(sentence) is not None


def with_antecedent(sentence: str, name: str) -> list[str]:
    """The sentence with its first pronoun replaced by ``name`` (possessives by ``name's``); for "her", both
    readings ("... told her ..." and "her CEO ..."). Empty when there is no pronoun."""
    match = _PRONOUN.search(sentence)
    if match is None:
        return []
    word = match.group(1).casefold()
    head, tail = sentence[: match.start()], sentence[match.end() :]
    forms = [f"{name}'s"] if word in _POSSESSIVE else [name]
    if word == "her":  # "her occupation": a possessive first; "married her?", "her and": the object first
        possessive_first = re.match(r"\s+(?!(?:and|or|to|in|at|as|for|with|from|by|on)\b)[A-Za-z]", tail) is not None
        forms = [f"{name}'s", name] if possessive_first else [name, f"{name}'s"]
    return [f"{head}{form}{tail}" for form in forms]
