"""Pronouns that stand for a name said earlier in the same message.

"Honda no longer makes the Acura TL. It is made by Toyota now." states a fact about the Acura TL, but read alone
the second sentence is about an entity called "It". :func:`has_pronoun` finds a personal or possessive pronoun in
a sentence and :func:`with_antecedent` puts a name in its place ("Its CEO is Jane Roe." -> "Honda's CEO is Jane
Roe."); the interpreter tries the names of the earlier sentences, most recent first, and keeps the first reading
whose names fit the relation's classes (:mod:`agent.tell._types`), so "it" above is the Acura TL (a product)
rather than Honda (a company). :func:`is_pronoun` keeps a pronoun from ever being stored as a name.
"""

from __future__ import annotations

import re

__all__ = ["has_pronoun", "is_pronoun", "with_antecedent"]

_PLAIN = ("it", "he", "she", "they", "him", "her", "them")
_POSSESSIVE = ("its", "his", "their")  # "her" is read as the object pronoun first, then as a possessive
_PRONOUN = re.compile(r"\b(it|he|she|they|him|her|them|its|his|their)\b", re.IGNORECASE)
_NAMES = set(_PLAIN) | set(_POSSESSIVE) | {"this company", "the company", "this person", "that company"}


def is_pronoun(name: str) -> bool:
    """``name`` is a pronoun, not a name ("It", "they", "this company")."""
    return name.strip().casefold() in _NAMES


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
