"""Claim support for long answers (FActScore-style): split into atomic claims, check each against evidence.

A long answer (at least ``min_words`` words, or more than one claim) is split into sentences, then at
clause boundaries (``;``, ``, and``, ``, but``, ``, while``, ``, whereas``), each piece with at least three
words being one claim. A claim is *supported* when the working memory backs it:

* KG: the retriever links the claim's entity and relation and finds a valid assertion (an exact triple
  lookup) whose object appears in the claim; or
* memory: a retrieved passage with cosine similarity >= ``threshold`` whose stated triple's object appears in
  the claim (a passage without a triple needs the similarity alone).

Everything else (contradicted or simply not found) is unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eval._normalize import normalize_answer

if TYPE_CHECKING:
    from agent.retrieval import Evidence
    from memory import Scope

__all__ = ["ClaimChecker", "ClaimSupport", "split_claims"]

# A sentence ends at . ! ? before a capital, except after an initial ("D. Rocke") or a short abbreviation
# ("No. 1", "Jr.", "Dr."): names are not sentences.
_SENTENCE = re.compile(
    r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!\bNo\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)"
    r"(?<!\bMrs\.)(?<!\bvs\.)\s+(?=[A-Z0-9\"'(])"
)
_CLAUSE = re.compile(r";\s*|,\s+(?:and|but|while|whereas)\s+", re.IGNORECASE)
_MIN_CLAIM_WORDS = 3


def split_claims(text: str) -> list[str]:
    """Atomic claims of ``text`` (sentences split at clause boundaries; pieces under three words dropped).

    Example:
        >>> split_claims("Lisa Su is the CEO of AMD; she studied at MIT. AMD is in Santa Clara.")
        ['Lisa Su is the CEO of AMD', 'she studied at MIT.', 'AMD is in Santa Clara.']
    """
    claims = []
    for sentence in _SENTENCE.split(text.strip()):
        for clause in _CLAUSE.split(sentence):
            clause = clause.strip()
            if len(clause.split()) >= _MIN_CLAIM_WORDS:
                claims.append(clause)
    return claims


@dataclass(frozen=True)
class ClaimSupport:
    """The claims of one answer and whether each is supported."""

    claims: tuple[str, ...]
    supported: tuple[bool, ...]

    @property
    def ratio(self) -> float | None:
        """Supported / claims, ``None`` without claims."""
        return sum(self.supported) / len(self.claims) if self.claims else None


class ClaimChecker:
    """Checks the claims of long answers against the KG and the vector memory through the hybrid retriever.

    Args:
        retriever: :class:`agent.retrieval.HybridRetriever` (its ``kg_evidence`` and ``retrieve``).
        scope: the memory namespace searched (default: all).
        namespaces: the KG namespaces read, in order of precedence (default: the whole graph).
        threshold: the cosine similarity from which a passage backs a claim.
        min_words: answers with at least this many words (or several sentences) are long.
        k: passages retrieved per claim.
    """

    def __init__(
        self,
        retriever: Any,
        *,
        scope: Scope | None = None,
        threshold: float = 0.75,
        min_words: int = 12,
        k: int = 3,
        namespaces: Sequence[str] | None = None,
    ) -> None:
        self._retriever = retriever
        self.namespaces = None if namespaces is None else tuple(namespaces)
        self.scope = scope
        self.threshold = threshold
        self.min_words = min_words
        self.k = k

    def is_long(self, text: str) -> bool:
        """Whether ``text`` is a long answer whose claims are checked (enough words, or several claims)."""
        return len(text.split()) >= self.min_words or len(split_claims(text)) > 1

    def supports(self, claim: str, evidence: Sequence[Evidence]) -> bool:
        """Whether one piece of ``evidence`` backs ``claim`` (see the module docstring)."""
        norm = f" {normalize_answer(claim)} "
        for e in evidence:
            triple = e.citation.triple
            if triple is not None:
                stated = f" {normalize_answer(triple.object)} " in norm
                if stated and (e.origin in ("kg", "both") or e.score >= self.threshold):
                    return True
            elif e.score >= self.threshold:
                return True
        return False

    def check(self, text: str) -> ClaimSupport:
        """Split ``text`` into claims and check each."""
        claims = split_claims(text)
        supported = []
        for claim in claims:
            evidence = list(self._retriever.kg_evidence(claim, namespaces=self.namespaces))
            if not self.supports(claim, evidence):
                evidence = self._retriever.retrieve(claim, scope=self.scope, k=self.k, namespaces=self.namespaces)
            supported.append(self.supports(claim, evidence))
        return ClaimSupport(tuple(claims), tuple(supported))
