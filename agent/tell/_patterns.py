"""Statement patterns derived from the relation schema, and matching a sentence against them.

Every ``fa:template`` of a relation that is a cloze (does not end with "?") becomes a statement pattern by
appending the object: ``"{}'s CEO is"`` matches "Alibaba's CEO is Jane Roe". Each relation also gets two
phrasings from its label: ``"{}'s <label> is"`` and ``"The <label> of {} is"``. Nothing about relations is
hard-coded here: a new relation in the schema brings its own patterns.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kg import Schema

logger = logging.getLogger(__name__)

__all__ = [
    "Match",
    "StatementPattern",
    "cloze_prompt",
    "cloze_templates",
    "match_sentence",
    "render_statement",
    "statement_patterns",
]


@dataclass(frozen=True)
class StatementPattern:
    """One way to state a relation: a template with ``{}`` for the subject, followed by the object."""

    relation: str
    template: str
    regex: re.Pattern[str]  # the shortest subject
    greedy: re.Pattern[str]  # the longest subject
    literal: int  # characters of fixed text: longer is more specific
    order: int  # the relation's position in the schema (breaks ties between relations)


@dataclass(frozen=True)
class Match:
    """A sentence read through one pattern."""

    pattern: StatementPattern
    subject: str
    object_text: str


def cloze_templates(schema: Schema, relation: str) -> tuple[str, ...]:
    """The relation's cloze ``fa:template`` phrasings (those not ending in "?"), in schema order."""
    return tuple(t for t in schema.relation(relation).templates if not t.rstrip().endswith("?"))


def _label_templates(label: str) -> tuple[str, ...]:
    return (f"{{}}'s {label} is", f"The {label} of {{}} is")


def _compile(relation: str, template: str, order: int) -> StatementPattern:
    before, _, after = template.partition("{}")
    # Fixed text matches case-insensitively with flexible spaces; the subject and object are captured.
    parts = [re.escape(p).replace(r"\ ", r"\s+") for p in (before.strip(), after.strip())]
    if re.search(r"(?:^|\s)a$", after.strip()):  # "works as a": "works as an engineer" too
        parts[1] += "n?"
    subject = r"(?P<subject>.+?)"
    head = parts[0] + (r"\s+" if before.strip() and not before.endswith(("'", "-")) else "")
    tail = parts[1]
    if after.startswith("'"):  # "{}'s father is": possessive straight after the subject
        middle = tail
    elif after.strip():
        middle = r"\s+" + tail
    else:
        middle = ""
    body = rf"^{head}{{}}{middle}\s+(?P<object>.+)$"
    regex = re.compile(body.format(subject), re.IGNORECASE)
    greedy = re.compile(body.format(r"(?P<subject>.+)"), re.IGNORECASE)
    return StatementPattern(relation, template, regex, greedy, len(before.strip()) + len(after.strip()), order)


def statement_patterns(
    schema: Schema, phrasings: Mapping[str, Sequence[str]] | None = None
) -> tuple[StatementPattern, ...]:
    """Every statement pattern of the schema, most specific (longest fixed text) first.

    Args:
        schema: the relations; their cloze templates and labels give patterns.
        phrasings: further statement phrasings by relation id (``fa:statement``); unknown relations are skipped.
    """
    extra = phrasings or {}
    for relation in extra:
        if relation not in schema:
            logger.warning("statement phrasings of %r ignored: no such relation in the schema", relation)
    found: dict[tuple[str, str], StatementPattern] = {}
    for order, spec in enumerate(schema.relations):
        own = tuple(t for t in extra.get(spec.id, ()) if "{}" in t)
        for template in (*cloze_templates(schema, spec.id), *own, *_label_templates(spec.label)):
            key = (spec.id, template.casefold())
            if key not in found:
                found[key] = _compile(spec.id, template, order)
    return tuple(sorted(found.values(), key=lambda p: (-p.literal, p.order, p.template)))


def match_sentence(patterns: tuple[StatementPattern, ...], sentence: str) -> list[Match]:
    """Every reading of ``sentence`` (cleaned, no final punctuation) as a statement, most specific first.

    Each pattern is tried with the shortest and the longest subject, so "The CEO of Acme is Jane" and
    names with "is" in them both have a reading; the interpreter picks among them.
    """
    out: list[Match] = []
    seen: set[tuple[str, str, str]] = set()
    for pattern in patterns:
        match = pattern.regex.match(sentence)
        if match is None:
            continue
        readings = [(match.group("subject"), match.group("object"))]
        greedy = pattern.greedy.match(sentence)
        if greedy is not None:
            readings.append((greedy.group("subject"), greedy.group("object")))
        for subject, obj in readings:
            subject, obj = subject.strip(" ,"), obj.strip()
            key = (pattern.relation, subject, obj)
            if subject and obj and key not in seen:
                seen.add(key)
                out.append(Match(pattern, subject, obj))
    return out


def render_statement(schema: Schema, subject: str, relation: str, obj: str) -> str:
    """A plain sentence stating the fact, from the relation's first cloze template (or its label)."""
    clozes = cloze_templates(schema, relation)
    head = clozes[0].format(subject) if clozes else f"The {schema.relation(relation).label} of {subject} is"
    return f"{head} {obj}."


def cloze_prompt(schema: Schema, relation: str, subject: str, template: str | None = None) -> str:
    """A cloze prompt about ``subject`` for a parametric edit: ``template`` when it is a cloze, else the first."""
    if template is not None and "{}" in template and not template.rstrip().endswith("?"):
        return template.format(subject)
    clozes = cloze_templates(schema, relation) or (f"The {schema.relation(relation).label} of {{}} is",)
    return clozes[0].format(subject)
