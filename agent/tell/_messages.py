"""One-line human summaries of what a tell did (the chat shows them)."""

from __future__ import annotations

from collections.abc import Sequence

from agent.tell._controller import Decision
from kg import Schema
from memory import Triple

__all__ = ["facts_text", "summary"]


def facts_text(schema: Schema, triples: Sequence[Triple]) -> str:
    """``(Acme Corp, CEO, Jane Roe), (...)``: facts with relation labels."""
    return ", ".join(f"({t.subject}, {schema.relation(t.relation).label}, {t.object})" for t in triples)


def summary(schema: Schema, decision: Decision, edit_id: str, superseded: Sequence[Triple]) -> str:
    """``Noted as edit e-7f3a01c2: (Acme Corp, CEO, Jane Roe). No conflict.`` and what it replaced or derived."""
    if decision.action == "free_text":
        return f"Noted as free text, edit {edit_id} (no known relation matched)."
    parts = [f"Noted as edit {edit_id}: {facts_text(schema, [c.triple for c in decision.claims])}."]
    parts.append(f"Replaces {facts_text(schema, superseded)}." if superseded else "No conflict.")
    if decision.augmented:
        parts.append(f"Also derived: {facts_text(schema, decision.augmented)}.")
    kept = [c for c in decision.conflicts if c.existing not in superseded]
    if kept:
        parts.append(f"Unresolved: {'; '.join(c.rule for c in kept)}.")
    return " ".join(parts)
