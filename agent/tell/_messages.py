"""One-line human summaries of what a tell did (the chat shows them): the triple read, how sure, what it did."""

from __future__ import annotations

from collections.abc import Sequence

from agent.tell._controller import Decision
from agent.tell._records import Claim
from kg import Schema
from memory import Triple

__all__ = ["did_you_mean", "facts_text", "summary"]


def facts_text(schema: Schema, triples: Sequence[Triple]) -> str:
    """``(Acme Corp, CEO, Jane Roe), (...)``: facts with relation labels."""
    return ", ".join(f"({t.subject}, {schema.relation(t.relation).label}, {t.object})" for t in triples)


def _read(schema: Schema, claims: Sequence[Claim]) -> str:
    """``(Acme Corp, CEO, Jane Roe)`` and, for a free phrasing the learned reader read, its confidence."""
    parts = []
    for c in claims:
        sure = f" [read with confidence {c.confidence:.2f}]" if c.template is None and c.confidence < 1.0 else ""
        parts.append(facts_text(schema, [c.triple]) + sure)
    return ", ".join(parts)


def did_you_mean(schema: Schema, suggestions: Sequence[Claim]) -> str:
    """``Did you mean (X, CEO, Y) (confidence 0.41)?`` for readings too unsure to apply; "" when none."""
    if not suggestions:
        return ""
    options = " or ".join(f"{facts_text(schema, [c.triple])} (confidence {c.confidence:.2f})" for c in suggestions[:3])
    return f"Did you mean {options}? Say it as e.g. '{_example(schema, suggestions[0].triple)}' to record it."


def _example(schema: Schema, t: Triple) -> str:
    return f"The {schema.relation(t.relation).label} of {t.subject} is {t.object}."


def summary(
    schema: Schema,
    decision: Decision,
    edit_id: str,
    superseded: Sequence[Triple],
    suggestions: Sequence[Claim] = (),
) -> str:
    """``Noted as edit e-7f3a01c2: (Acme Corp, CEO, Jane Roe). No conflict.`` and what it replaced or derived.

    A message no relation was read from says so, and offers the nearest readings (``suggestions``).
    """
    if decision.action == "free_text":
        ask = did_you_mean(schema, suggestions)
        if ask:
            return f"Noted as free text, edit {edit_id}: I read no fact I am sure of. {ask}"
        return f"Noted as free text, edit {edit_id} (no known relation matched)."
    parts = [f"Noted as edit {edit_id}: {_read(schema, decision.claims)}."]
    parts.append(f"Replaces {facts_text(schema, superseded)}." if superseded else "No conflict.")
    if decision.augmented:
        parts.append(f"Also derived: {facts_text(schema, decision.augmented)}.")
    kept = [c for c in decision.conflicts if c.existing not in superseded]
    if kept:
        parts.append(f"Unresolved: {'; '.join(c.rule for c in kept)}.")
    return " ".join(parts)
