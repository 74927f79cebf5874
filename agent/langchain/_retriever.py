"""``FactRetriever``: the agent's hybrid retrieval (KG facts and memory passages) as a LangChain retriever."""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from agent._agent import Agent
from agent.retrieval import Evidence, HybridRetriever
from memory import Scope
from tools.errors import UnknownNamespaceError

__all__ = ["FactRetriever", "evidence_document"]

logger = logging.getLogger(__name__)


def evidence_document(evidence: Evidence) -> Document:
    """One piece of evidence as a ``Document``; its citation and score go into the metadata."""
    c = evidence.citation
    metadata: dict[str, Any] = {
        "score": evidence.score,
        "origin": evidence.origin,
        "item_id": c.item_id,
        "assertion_id": c.assertion_id,
        "edit_id": c.edit_id,
        "who": c.who,
    }
    if c.triple is not None:
        metadata["triple"] = (c.triple.subject, c.triple.relation, c.triple.object)
    if evidence.recorded_at is not None:
        metadata["recorded_at"] = evidence.recorded_at.isoformat()
    return Document(page_content=evidence.text, metadata=metadata)


class FactRetriever(BaseRetriever):
    """Exact KG facts and vector-memory passages for a query, best first (``metadata["score"]``: higher is better).

    Args:
        retriever: the hybrid retriever (``agent.wm.retriever``).
        scopes: memory scopes to search; their results are merged by score. Empty: the whole memory.
        k: how many documents to return.

    Example:
        >>> docs = FactRetriever.from_agent(agent).invoke("Who is the CEO of AOL?")  # doctest: +SKIP
        >>> docs[0].page_content, docs[0].metadata["origin"]  # doctest: +SKIP
        ('The CEO of AOL is Tim Armstrong.', 'both')
    """

    retriever: HybridRetriever
    scopes: list[Scope] = Field(default_factory=list)
    k: int = Field(default=5, ge=1, le=100)

    @classmethod
    def from_agent(cls, agent: Agent, namespace: str = "default", k: int = 5) -> FactRetriever:
        """The retriever over what ``agent`` searches for a question in ``namespace`` (and the shared ones)."""
        return cls(retriever=agent.wm.retriever, scopes=agent.scopes(namespace), k=k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        merged: dict[tuple[str, str], Evidence] = {}
        scopes: list[Scope | None] = [*self.scopes] or [None]
        names = [s.agent_id for s in self.scopes if s.agent_id is not None] or None  # KG: these namespaces only
        for scope in scopes:
            try:
                found = self.retriever.retrieve(query, scope=scope, k=self.k, namespaces=names)
            except UnknownNamespaceError:  # a namespace nothing was written to yet holds no passage; the KG may
                found = self.retriever.kg_evidence(query, namespaces=names)[: self.k]
            for e in found:  # KG facts come back for every scope: keep each piece of evidence once
                key = (e.citation.assertion_id or "", e.citation.item_id or e.text)
                if key not in merged or merged[key].score < e.score:
                    merged[key] = e
        best = sorted(merged.values(), key=lambda e: -e.score)[: self.k]
        return [evidence_document(e) for e in best]
