"""Typed records of the agent and its stores -> the API's wire models."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from agent.server._schemas import EDIT_PREVIEW, AnswerOut, CitationOut, EditOut, FactOut, TellOut, TripleModel

if TYPE_CHECKING:
    from agent._answer import Answer
    from agent.tell import EditRecord, TellResult
    from memory import MemoryItem, Triple

__all__ = ["answer_out", "edit_out", "fact_out", "tell_out", "triples_out"]


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def triples_out(triples: Iterable[Triple]) -> list[TripleModel]:
    return [TripleModel(subject=t.subject, relation=t.relation, object=t.object) for t in triples]


def answer_out(a: Answer) -> AnswerOut:
    citations = [
        CitationOut(
            text=e.text,
            origin=e.origin,
            score=_finite(e.score),
            item_id=e.citation.item_id,
            assertion_id=e.citation.assertion_id,
            edit_id=e.citation.edit_id,
            who=e.citation.who,
        )
        for e in a.citations
    ]
    return AnswerOut(
        text=a.text, action=a.action, confidence=_finite(a.confidence), reason=a.reason,
        latency_s=_finite(a.latency_s), model_calls=a.model_calls, citations=citations,
    )  # fmt: skip


def tell_out(r: TellResult) -> TellOut:
    return TellOut(
        status=r.status, kind=r.kind, edit_id=r.edit_id, quarantine_id=r.quarantine_id, message=r.message,
        triples=triples_out(r.triples), augmented=triples_out(r.augmented), superseded=triples_out(r.superseded),
    )  # fmt: skip


def fact_out(item: MemoryItem) -> FactOut:
    t = item.triple
    return FactOut(
        id=item.id, version=item.version, text=item.text, namespace=item.scope.agent_id,
        triple=None if t is None else TripleModel(subject=t.subject, relation=t.relation, object=t.object),
        source=item.source, status=item.status, created_at=item.created_at, metadata=dict(item.metadata),
    )  # fmt: skip


def edit_out(r: EditRecord) -> EditOut:
    return EditOut(
        edit_id=r.edit_id, origin=r.origin, who=r.who, created_at=r.created_at, namespace=r.namespace,
        text=r.text, status=r.status, triples=triples_out(r.triples[:EDIT_PREVIEW]), triple_count=len(r.triples),
    )  # fmt: skip
