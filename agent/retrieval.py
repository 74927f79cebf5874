"""Hybrid retrieval: exact knowledge-graph facts and vector-memory passages for one question, merged.

For a question the retriever
1. finds entity mentions (labels and aliases, longest first) and ranks relations by their templates;
2. looks up ``(subject, relation)`` in the knowledge graph at ``as_of`` -> exact triples with provenance
   (for a Chinese question, with the object's ``@zh`` name when the KG has one);
3. searches the vector memory in the caller's scope at ``as_of`` -> passages with cosine scores; with
   ``fusion="rrf"`` also by words (BM25 over jieba segmentation, for Chinese, which MiniLM cannot embed)
   and merges both rankings by reciprocal rank fusion (scores in (0, 1], see
   :func:`memory.reciprocal_rank_fusion`; recalibrate the policy's ``memory`` threshold for it); a Chinese
   question keeps only the passages that contain its subject spans when a ``zh_gate`` is given
   (:mod:`agent.zh_gate`);
4. merges both, deduplicating a memory item that states the same triple as a KG assertion (one piece of
   evidence citing both) and passages with the same text, and ranks by score.

Scores are in [0, 1] for KG hits (entity-link score x relation-link score) and cosine similarity for memory
hits; higher is better in both, so they sort together.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from agent.zh_gate import ZhSubjectGate, has_cjk
from kg import normalize_mention
from memory import reciprocal_rank_fusion
from tools.errors import ConfigError

if TYPE_CHECKING:
    from kg import Assertion, EntityLinker, KnowledgeGraph, RelationLinker
    from memory import MemoryHit, Scope, Triple, VectorMemory

__all__ = ["Citation", "Evidence", "HybridRetriever", "Superseded"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Citation:
    """Where a piece of evidence comes from: a memory item, a KG assertion, or both, and the edit that wrote it."""

    item_id: str | None = None
    assertion_id: str | None = None
    triple: Triple | None = None
    edit_id: str | None = None
    who: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One retrieved fact or passage. ``score``: higher = more relevant (see the module docstring).

    ``object_label``: a KG fact's object as the question's language names it (its ``@zh`` label for a
    question with CJK characters, :meth:`kg.KnowledgeGraph.label_in`); ``None``: the triple's own object.
    """

    text: str
    score: float
    origin: Literal["kg", "memory", "both"]
    citation: Citation
    recorded_at: datetime | None = None
    object_label: str | None = None


@dataclass(frozen=True, kw_only=True)
class Superseded:
    """A fact that no longer holds: ``triple`` was replaced; ``current``: the objects its (subject, relation)
    has now; ``label``: the relation's name ("CEO")."""

    triple: Triple
    current: tuple[str, ...]
    label: str


def _triple_key(triple: Triple) -> tuple[str, str, str]:
    return normalize_mention(triple.subject), triple.relation, normalize_mention(triple.object)


class HybridRetriever:
    """Merges knowledge-graph lookups and vector-memory search for a question.

    Args:
        memory: the vector memory.
        graph: the knowledge graph.
        entities: links mentions in the question to KG entities.
        relations: ranks the schema's relations for the question.
        k: how many pieces of evidence to return by default.
        min_relation_score: relation candidates below this are not looked up in the KG.
        relations_per_subject: how many relation candidates are looked up per linked subject.
        fusion: ``"vector"`` (memory passages by meaning only) or ``"rrf"`` (meaning and words, fused).
        rrf_k: the reciprocal-rank-fusion constant (60, as in Cormack et al.).
        zh_gate: keeps a Chinese question's memory passages that name its subject (``None``: no gate).

    Example:
        >>> linkers = EntityLinker(graph.entities()), RelationLinker(graph.schema.templates())  # doctest: +SKIP
        >>> retriever = HybridRetriever(memory, graph, *linkers)  # doctest: +SKIP
        >>> retriever.retrieve("Who is the CEO of Acme?", scope=Scope(user_id="alice"))[0].text  # doctest: +SKIP
        'The CEO of Acme is Jane Roe.'
    """

    def __init__(
        self,
        memory: VectorMemory,
        graph: KnowledgeGraph,
        entities: EntityLinker,
        relations: RelationLinker,
        *,
        k: int = 5,
        min_relation_score: float = 0.6,
        relations_per_subject: int = 2,
        fusion: Literal["vector", "rrf"] = "vector",
        rrf_k: int = 60,
        zh_gate: ZhSubjectGate | None = None,
    ) -> None:
        if fusion not in ("vector", "rrf"):
            raise ConfigError(f"fusion must be 'vector' or 'rrf', got {fusion!r}")
        self._memory = memory
        self._graph = graph
        self._entities = entities
        self._relations = relations
        self.k = k
        self.min_relation_score = min_relation_score
        self.relations_per_subject = relations_per_subject
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.zh_gate = zh_gate

    def memory_hits(
        self, question: str, *, k: int, scope: Scope | None = None, as_of: datetime | None = None
    ) -> list[MemoryHit]:
        """The memory passages for ``question``, best first: by meaning, or fused with words (``fusion``); a
        Chinese question's only when they name its subject (``zh_gate``)."""
        key = self.zh_gate.key(question) if self.zh_gate is not None else None
        wanted = 3 * k + 5 if key is not None else k  # candidates the gate may thin out

        def admitted(hits: list[MemoryHit]) -> list[MemoryHit]:  # each channel gated before fusion: ranks among kept
            return hits if key is None else [hit for hit in hits if key.admits(hit.item.text)]

        hits = admitted(self._memory.search(question, k=wanted, scope=scope, as_of=as_of))
        words = (
            admitted(self._memory.search_lexical(question, k=wanted, scope=scope, as_of=as_of))
            if self.fusion == "rrf"
            else []
        )
        if key is not None and any(has_cjk(hit.item.text) for hit in (*hits, *words)):
            # a Chinese question reads Chinese passages when memory has any on its subject: a reader copies the
            # passage's language ("Chaville is in France." -> "France" for Chaville在哪个国家？)
            hits, words = [h for h in hits if has_cjk(h.item.text)], [h for h in words if has_cjk(h.item.text)]
        if self.fusion == "rrf":
            hits = reciprocal_rank_fusion([hits, words], k=self.rrf_k)
        return hits[:k]

    def lookup(
        self,
        subject: str,
        relation: str,
        *,
        as_of: datetime | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> list[Assertion]:
        """Valid KG assertions of ``(subject, relation)`` at ``as_of``, the subject linked from a mention.

        The mention is linked by normalised label, then alias, then embedding similarity; the facts of the
        best-linked entity that has any are returned. ``namespaces``: what the reader sees, in order of
        precedence (``KnowledgeGraph.facts``); ``None``: the whole graph.

        Raises:
            InvalidInputError: empty mention or unknown relation.
        """
        self._graph.schema.relation(relation)  # unknown relation -> InvalidInputError, before any linking
        for link in self._entities.link(subject, namespaces=namespaces):
            facts = self._graph.facts(link.entity.iri, relation, as_of=as_of, namespaces=namespaces)
            if facts:
                return facts
        return []

    def kg_evidence(
        self, question: str, *, as_of: datetime | None = None, namespaces: Sequence[str] | None = None
    ) -> list[Evidence]:
        """Exact KG facts for the (subject, relation) pairs the question names, as a reader of ``namespaces``
        (in order of precedence; ``None``: the whole graph) sees them. For a question with CJK characters
        each fact carries its object's Chinese name when the KG has one (:attr:`Evidence.object_label`)."""
        language = "zh" if has_cjk(question) else None  # English questions read the label, as before
        found: list[Evidence] = []
        seen: set[str] = set()
        for mention in self._entities.find_mentions(question, namespaces=namespaces)[:3]:
            links = self._relations.link(question, mention.surface, k=self.relations_per_subject)
            for rel in links:
                if rel.score < self.min_relation_score:
                    continue
                facts = self._graph.facts(mention.link.entity.iri, rel.relation, as_of=as_of, namespaces=namespaces)
                for assertion in facts:
                    if assertion.id in seen:
                        continue
                    seen.add(assertion.id)
                    evidence = self._from_assertion(assertion, mention.link.score * rel.score)
                    if language is not None:
                        named = self._graph.label_in(assertion.object_iri, language, namespaces=namespaces)
                        evidence = replace(evidence, object_label=named)
                    found.append(evidence)
        return found

    def superseded(self, question: str, *, namespaces: Sequence[str] | None = None) -> tuple[Superseded, ...]:
        """Facts about the names the question mentions that no longer hold because another object replaced
        them: ``(AOL, CEO, Tim Armstrong)`` once a user told that AOL's CEO is now Jane Roe. An answer naming
        such an object is out of date (the policy does not give it)."""
        found: dict[Triple, Superseded] = {}
        for mention in self._entities.find_mentions(question, namespaces=namespaces)[:3]:
            iri = mention.link.entity.iri
            current: dict[str, set[str]] = {}
            for a in self._graph.facts(iri, namespaces=namespaces):  # as the reader sees them: shadowed ones left out
                current.setdefault(a.triple.relation, set()).add(a.triple.object)
            for a in self._graph.history(iri, namespaces=namespaces):
                now = current.get(a.triple.relation, set())
                if now and a.triple.object not in now:  # invalidated, or shadowed by a newer namespace's fact
                    label = self._graph.schema.relation(a.triple.relation).label
                    found.setdefault(a.triple, Superseded(triple=a.triple, current=tuple(sorted(now)), label=label))
        return tuple(found.values())

    def _from_assertion(self, assertion: Assertion, score: float) -> Evidence:
        spec = self._graph.schema.relation(assertion.triple.relation)
        text = f"{assertion.triple.subject} — {spec.label} — {assertion.triple.object}."
        citation = Citation(
            assertion_id=assertion.id, triple=assertion.triple, edit_id=assertion.edit_id, who=assertion.who
        )
        return Evidence(text, score, "kg", citation, assertion.recorded_at)

    @staticmethod
    def _from_hit(hit: MemoryHit) -> Evidence:
        item = hit.item
        citation = Citation(item_id=item.id, triple=item.triple, edit_id=item.edit_id, who=item.source)
        return Evidence(item.text, hit.score, "memory", citation, item.created_at)

    def retrieve(
        self,
        question: str,
        *,
        scope: Scope | None = None,
        as_of: datetime | None = None,
        k: int | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> list[Evidence]:
        """KG facts and memory passages for ``question``, deduplicated, best first (at most ``k``).

        ``namespaces`` restricts the KG facts (see :meth:`kg_evidence`); ``scope`` the memory passages.

        Raises:
            InvalidInputError: empty question, bad scope, naive ``as_of``.
            UnknownNamespaceError: ``scope`` names a namespace no memory was written to.
        """
        limit = k or self.k
        kg_hits = self.kg_evidence(question, as_of=as_of, namespaces=namespaces)
        by_triple = {_triple_key(e.citation.triple): i for i, e in enumerate(kg_hits) if e.citation.triple}
        merged = list(kg_hits)
        seen_text: set[str] = {normalize_mention(e.text) for e in kg_hits}
        for hit in self.memory_hits(question, k=limit, scope=scope, as_of=as_of):
            evidence = self._from_hit(hit)
            triple = evidence.citation.triple
            if triple is not None and _triple_key(triple) in by_triple:
                i = by_triple[_triple_key(triple)]
                kg = merged[i]
                merged[i] = replace(
                    kg,
                    text=evidence.text,
                    score=max(kg.score, evidence.score),
                    origin="both",
                    citation=replace(kg.citation, item_id=evidence.citation.item_id),
                )
                continue
            key = normalize_mention(evidence.text)
            if key in seen_text:
                continue
            seen_text.add(key)
            merged.append(evidence)
        merged.sort(key=lambda e: -e.score)
        return merged[:limit]
