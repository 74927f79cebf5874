"""Relation linking: which schema relation does a question ask about?

The subject's mention is masked (``"who is the ceo of x"``), then compared with each relation's question and
cloze templates masked the same way: an exact template match scores 1.0, otherwise the cosine similarity of
sentence embeddings (when an embedder is given). Templates come from the schema file, not from code.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kg._linking import normalize_mention
from tools.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from tools.base import Embedder

__all__ = ["RelationLink", "RelationLinker"]

logger = logging.getLogger(__name__)
SLOT = "x"  # what a subject mention and a template's "{}" are both masked to


@dataclass(frozen=True)
class RelationLink:
    """A candidate relation for a question; ``score`` in [0, 1], higher = more certain."""

    relation: str
    score: float
    template: str


def mask(text: str, mention: str | None) -> str:
    """Normalise ``text`` and replace the (normalised) ``mention`` in it by the slot word."""
    norm = normalize_mention(text)
    if mention:
        key = normalize_mention(mention)
        if key:
            norm = f" {norm} ".replace(f" {key} ", f" {SLOT} ", 1).strip()
    return norm


class RelationLinker:
    """Ranks relations for a question by its templates.

    Args:
        templates: relation id -> phrasings with ``{}`` where the subject goes (questions or cloze prompts).
        embedder: optional; without it only exact (masked) template matches are found.
        cache_dir: optional directory where the template embeddings are kept between runs (a ``.npy`` file
            named by a hash of the embedder's name and the templates), so a CLI call does not re-embed them.
        exact_templates: further phrasings matched only exactly, never embedded (the schema's Chinese
            templates: the English embedder cannot compare Chinese, and they must not pull English questions).

    Example:
        >>> linker = RelationLinker({"company_ceo": ["Who is the CEO of {}?"]})
        >>> linker.link("Who is the CEO of Acme?", "Acme")[0].relation
        'company_ceo'
    """

    def __init__(
        self,
        templates: Mapping[str, Sequence[str]],
        embedder: Embedder | None = None,
        *,
        cache_dir: Path | None = None,
        exact_templates: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._embedder = embedder
        self._cache_dir = cache_dir
        self._rows: list[tuple[str, str]] = []  # (relation, template) in matrix order
        self._exact: dict[str, list[tuple[str, str]]] = {}
        for relation, phrasings in templates.items():
            for template in phrasings:
                if "{}" not in template:
                    raise InvalidInputError(f"template {template!r} of {relation} has no '{{}}' slot")
                masked = mask(template.replace("{}", SLOT), None)
                self._rows.append((relation, masked))
                self._exact.setdefault(masked, []).append((relation, template))
        for relation, phrasings in (exact_templates or {}).items():
            for template in phrasings:
                if "{}" not in template:
                    raise InvalidInputError(f"template {template!r} of {relation} has no '{{}}' slot")
                self._exact.setdefault(mask(template.replace("{}", SLOT), None), []).append((relation, template))
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    def link(self, question: str, subject_mention: str | None = None, k: int = 3) -> list[RelationLink]:
        """The ``k`` best relations for ``question`` whose subject is ``subject_mention``, best first."""
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("a question must be a non-empty string")
        masked = mask(question, subject_mention)
        exact = [RelationLink(rel, 1.0, tpl) for rel, tpl in self._exact.get(masked, [])]
        if exact or self._embedder is None or not self._rows:
            return exact[:k]
        return self._by_embedding(self._embedder, masked, k)

    def embedding_text(self, question: str, subject_mention: str | None = None) -> str | None:
        """The text :meth:`link` embeds for ``question`` and ``subject_mention`` (the masked question), or
        ``None`` when it embeds nothing (an exact template match, or no embedder): a caller may embed it
        ahead, together with other texts, in front of a memoising embedder."""
        masked = mask(question, subject_mention)
        if not masked or masked in self._exact or self._embedder is None or not self._rows:
            return None
        return masked

    def _by_embedding(self, embedder: Embedder, masked: str, k: int) -> list[RelationLink]:
        with self._lock:
            if self._matrix is None:
                self._matrix = self._template_matrix(embedder)
            matrix = self._matrix
        scores = matrix @ embedder.embed([masked])[0]
        best: dict[str, RelationLink] = {}
        for (relation, template), score in zip(self._rows, scores.tolist(), strict=True):
            if relation not in best or score > best[relation].score:
                best[relation] = RelationLink(relation, max(0.0, float(score)), template)
        return sorted(best.values(), key=lambda r: -r.score)[:k]

    def _template_matrix(self, embedder: Embedder) -> np.ndarray:
        import numpy as np

        texts = [tpl for _, tpl in self._rows]
        if self._cache_dir is None:
            return embedder.embed(texts)
        name = str(getattr(embedder, "name", type(embedder).__name__))
        digest = hashlib.sha256("\n".join([name, *texts]).encode("utf-8")).hexdigest()[:24]
        path = self._cache_dir / f"relation-templates-{digest}.npy"
        try:
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return cached
        except (OSError, ValueError):
            pass  # no cache yet, or a damaged one: embed again and rewrite it
        matrix = embedder.embed(texts)
        try:
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, matrix)
            tmp.replace(path)
        except OSError as exc:
            logger.warning("cannot cache relation template embeddings in %s: %s", self._cache_dir, exc)
        return matrix
