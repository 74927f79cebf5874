"""Checking a claim against what the agent knows: the knowledge graph first, then the vector memory.

A claim sentence is read by the tell pipeline's interpreter into triples (nothing is written). Each triple
``(subject, relation, object)`` is

- ``SUPPORTED`` when a currently valid fact for ``(subject, relation)`` has that object;
- ``CONTRADICTED`` when the relation is functional and the valid facts name another object;
- ``NOT_ENOUGH_INFO`` otherwise.

The knowledge graph is authoritative: memory passages are consulted only when the graph holds no fact for
``(subject, relation)`` (and only passages stating a triple of the same subject and relation count). The
claim's verdict is ``CONTRADICTED`` if any triple is, ``SUPPORTED`` if all are, else ``NOT_ENOUGH_INFO``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agent.retrieval import Citation, Evidence
from kg import normalize_mention
from memory import Scope, Triple
from tools.errors import UnknownNamespaceError

if TYPE_CHECKING:
    from agent import Agent
    from kg import Assertion
    from memory import MemoryHit

__all__ = ["ClaimCheck", "Verdict", "Verification", "check_triple", "verify_claim"]

logger = logging.getLogger(__name__)

Verdict = Literal["SUPPORTED", "CONTRADICTED", "NOT_ENOUGH_INFO"]
MEMORY_K = 10  # passages searched per scope when the graph holds nothing for (subject, relation)


@dataclass(frozen=True)
class ClaimCheck:
    """The verdict on one triple of a claim, with the evidence it rests on (``reason`` says which source)."""

    triple: Triple
    verdict: Verdict
    evidence: tuple[Evidence, ...]
    reason: str


@dataclass(frozen=True)
class Verification:
    """The verdict on a whole claim: one :class:`ClaimCheck` per triple the claim states."""

    claim: str
    verdict: Verdict
    checks: tuple[ClaimCheck, ...]
    reason: str

    def to_json(self) -> str:
        """A compact JSON rendering (what the ``verify_claim`` tool returns to a calling model)."""
        return json.dumps(
            {
                "verdict": self.verdict,
                "reason": self.reason,
                "checks": [
                    {
                        "triple": [c.triple.subject, c.triple.relation, c.triple.object],
                        "verdict": c.verdict,
                        "reason": c.reason,
                        "evidence": [_evidence_json(e) for e in c.evidence],
                    }
                    for c in self.checks
                ],
            },
            ensure_ascii=False,
        )


def _evidence_json(e: Evidence) -> dict[str, Any]:
    c = e.citation
    cited = {"item_id": c.item_id, "assertion_id": c.assertion_id, "edit_id": c.edit_id, "who": c.who}
    return {"text": e.text, "origin": e.origin, "score": round(e.score, 4), **{k: v for k, v in cited.items() if v}}


def _same(a: str, b: str) -> bool:
    return normalize_mention(a) == normalize_mention(b)


def _judge(triple: Triple, functional: bool, found: list[tuple[Triple, Evidence]], source: str) -> ClaimCheck:
    """The verdict for ``triple`` given the facts a source holds for its (subject, relation)."""
    agreeing = tuple(e for t, e in found if _same(t.object, triple.object))
    if agreeing:
        return ClaimCheck(triple, "SUPPORTED", agreeing, f"{source} states it")
    others = tuple(e for _, e in found)
    if functional:
        named = ", ".join(dict.fromkeys(t.object for t, _ in found))
        return ClaimCheck(triple, "CONTRADICTED", others, f"{source} says {named} (one value only)")
    return ClaimCheck(triple, "NOT_ENOUGH_INFO", others, f"{source} lists other values; this one is not among them")


def _kg_evidence(agent: Agent, assertion: Assertion) -> Evidence:
    label = agent.wm.graph.schema.relation(assertion.triple.relation).label
    t = assertion.triple
    citation = Citation(assertion_id=assertion.id, triple=t, edit_id=assertion.edit_id, who=assertion.who)
    return Evidence(f"{t.subject} — {label} — {t.object}.", 1.0, "kg", citation, assertion.recorded_at)


def _memory_evidence(hit: MemoryHit) -> Evidence:
    item = hit.item
    citation = Citation(item_id=item.id, triple=item.triple, edit_id=item.edit_id, who=item.source)
    return Evidence(item.text, hit.score, "memory", citation, item.created_at)


def _names(agent: Agent, namespace: str, shared: Sequence[str] | None) -> list[str]:
    """What is searched for ``namespace``: it, then ``shared`` (default: the agent's shared namespaces)."""
    return list(dict.fromkeys([namespace, *(agent.shared if shared is None else shared)]))


def _memory_facts(
    agent: Agent, sentence: str, triple: Triple, namespace: str, shared: Sequence[str] | None = None
) -> list[tuple[Triple, Evidence]]:
    """Memory passages that state a triple with the claim's subject and relation."""
    found: list[tuple[Triple, Evidence]] = []
    for scope in [Scope(agent_id=n) for n in _names(agent, namespace, shared)]:
        try:
            hits = agent.wm.memory.search(sentence, k=MEMORY_K, scope=scope)
        except UnknownNamespaceError:  # nothing was ever written there
            continue
        for hit in hits:
            t = hit.item.triple
            if t is not None and t.relation == triple.relation and _same(t.subject, triple.subject):
                found.append((t, _memory_evidence(hit)))
    return found


def check_triple(
    agent: Agent, triple: Triple, sentence: str, namespace: str = "default", shared: Sequence[str] | None = None
) -> ClaimCheck:
    """The verdict on one triple: the KG's valid facts for (subject, relation), else memory passages, as a
    reader of ``namespace`` and ``shared`` (default: the agent's shared namespaces) sees them."""
    functional = agent.wm.graph.schema.relation(triple.relation).functional
    names = _names(agent, namespace, shared)
    facts = agent.wm.retriever.lookup(triple.subject, triple.relation, namespaces=names)
    if facts:
        return _judge(triple, functional, [(a.triple, _kg_evidence(agent, a)) for a in facts], "the knowledge graph")
    passages = _memory_facts(agent, sentence, triple, namespace, shared)
    if passages:
        return _judge(triple, functional, passages, "memory")
    return ClaimCheck(triple, "NOT_ENOUGH_INFO", (), "no fact about it in the knowledge graph or memory")


def verify_claim(
    agent: Agent, claim: str, namespace: str = "default", shared: Sequence[str] | None = None
) -> Verification:
    """Check ``claim`` (plain English) against the agent's knowledge graph and memory; nothing is written.

    Args:
        agent: an agent opened with its tell pipeline (its interpreter reads the claim).
        claim: e.g. ``"The CEO of Acme Corp is Jane Roe."``.
        namespace: the namespace searched first (KG facts and memory).
        shared: the shared namespaces searched after it (default: the agent's); nothing else is read.

    Returns:
        The verdict with one check per stated fact.

    Raises:
        InvalidInputError: empty or oversized claim, or a read-only agent.
        ContradictoryStatementError: the claim contradicts itself.

    Example:
        >>> verify_claim(agent, "The CEO of AOL is Tim Armstrong.").verdict  # doctest: +SKIP
        'SUPPORTED'
    """
    reading = agent.pipeline.interpret(claim, _names(agent, namespace, shared))  # names as this reader's
    if not reading.claims:
        why = f"no checkable fact in the claim ({reading.kind}: {reading.reason})"
        return Verification(claim, "NOT_ENOUGH_INFO", (), why)
    checks = tuple(check_triple(agent, c.triple, c.sentence, namespace, shared) for c in reading.claims)
    verdicts = {c.verdict for c in checks}
    verdict: Verdict
    if "CONTRADICTED" in verdicts:
        verdict = "CONTRADICTED"
    elif verdicts == {"SUPPORTED"}:
        verdict = "SUPPORTED"
    else:
        verdict = "NOT_ENOUGH_INFO"
    reason = "; ".join(f"({c.triple.subject}, {c.triple.relation}, {c.triple.object}): {c.reason}" for c in checks)
    logger.debug("verify_claim %r -> %s", claim, verdict)
    return Verification(claim, verdict, checks, reason)
