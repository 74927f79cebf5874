"""The reader grammar's machinery: :func:`expand` turns a pattern with ``(a|b|)`` alternations into every
phrasing it stands for, :data:`NOUN_FRAMES` are the frames every role noun is used in, and :class:`Lexicon`
holds one relation's words. The relations' lexicons are :data:`agent.tell._reader_grammar.GRAMMAR`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

__all__ = ["NOUN_FRAMES", "OBJECT_TAILS", "SUBJECT_TAILS", "Lexicon", "expand"]

_GROUP = re.compile(r"\(([^()]*)\)")


def expand(pattern: str) -> list[str]:
    """Every phrasing ``pattern`` stands for: each ``(a|b|)`` group is one of its alternatives (may be empty).

    >>> expand("{s} (is|was) run by {o}")
    ['{s} is run by {o}', '{s} was run by {o}']
    """
    parts = _GROUP.split(pattern)
    literals, groups = parts[0::2], [g.split("|") for g in parts[1::2]]
    out = []
    for choice in itertools.product(*groups):
        text = literals[0] + "".join(c + lit for c, lit in zip(choice, literals[1:], strict=True))
        out.append(re.sub(r"\s+", " ", text).strip().replace(" ,", ","))
    return out


# Frames with the object as the subject's N. {pos}: the subject's possessive pronoun; {tail}: a clause
# about the subject, {otail}: one about the object (relative clauses and appositions need a main verb).
NOUN_FRAMES: dict[str, str] = {
    "poss_is": "{s}'s (|new |current |present |actual |official |real ){n} is {o}",
    "poss_was": "{s}'s {n} (was|has been|became) {o}",
    "poss_named": "{s}'s {n} is (named|called|listed as) {o}",
    "of_is": "(the|The) {n} of {s} (is|was|is now|has been) {o}",
    "of_named": "(the|The) {n} of {s} is (called|named) {o}",
    "obj_poss": "{o} (is|was|has become|became|is listed as|is still) {s}'s {n}",
    "obj_of": "{o} (is|was|has become|became|remains) the {n} of {s}",
    "obj_serves": "{o} (serves|acts|works) as (the |){n} of {s}",
    "whose": "{s}, whose {n} (is|was) {o}, {tail}",
    "obj_appos": "{o}, the {n} of {s}, {otail}",
    "obj_appos_poss": "{o}, {s}'s {n}, {otail}",
    "subj_appos": "{s}'s {n}, {o}, {otail}",
    "has_as": "{s} (has|had|now has) {o} as {pos} {n}",
    "lists_as": "{s} (lists|named|names|gives) {o} as {pos} {n}",
    "colon": "{s}'s {n}: {o}",
    "records": "(According to records|Officially|On paper), {s}'s {n} is {o}",
    "turns_out": "(Apparently|Reportedly|Word is), {o} is the {n} of {s}",
    "know": "(I found out|I learned|I just learned|I read) that {s}'s {n} is {o}",
}

SUBJECT_TAILS = "(is well known|made the news|gave an interview|is popular|keeps growing|was mentioned today)"
OBJECT_TAILS = "(is well known|made the news|gave an interview|spoke on Monday|was mentioned today)"


@dataclass(frozen=True)
class Lexicon:
    """One relation's words: role nouns for the noun frames, and relation-specific clause patterns.

    Attributes:
        nouns: the object's role for the subject ("CEO"); abbreviations and misspellings welcome.
        clauses: patterns with ``{s}`` and ``{o}`` (and alternations) in active, passive, phrasal forms.
        pos: the subject's possessive pronoun(s) in ``has_as`` / ``lists_as`` frames.
        skip: ``"frame:noun"`` combinations left out (decontamination, see the module docstring).
        frames: the noun frames this relation uses (default: all).
    """

    nouns: tuple[str, ...]
    clauses: tuple[str, ...]
    pos: str = "(its)"
    skip: frozenset[str] = field(default_factory=frozenset)
    frames: tuple[str, ...] = tuple(NOUN_FRAMES)
