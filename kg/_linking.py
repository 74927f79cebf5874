"""Entity linking: from a mention string ("beyonce", "the Eiffel tower") to knowledge-graph entities.

Three stages, cheapest first: the normalised label, then a normalised alias (``skos:altLabel``), then
embedding similarity between the mention and every label (only when an :class:`memory.Embedder` is given).
Normalisation folds case, accents, punctuation and whitespace, so "Beyoncé Knowles" and "beyonce  knowles"
meet; it is also what :meth:`EntityLinker.find_mentions` scans a whole question with. Chinese has no word
boundaries, so every CJK ideograph counts as a word of its own (``"法国的首都"`` -> ``"法 国 的 首 都"``: a
name is found inside a sentence by its characters) and traditional characters are folded to simplified
(OpenCC ``t2s``), so ``法國`` links to ``法国``. A match by label or
alias must also agree on the name's own punctuation (:func:`name_key`), so names that differ only in it
("?x" and a quoted "x", "C" and "C++") stay distinct entities.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kg._records import WORLD_NAMESPACE, Entity
from tools.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np

    from tools.base import Embedder

__all__ = ["EntityLinker", "Link", "Mention", "name_key", "normalize_mention"]

logger = logging.getLogger(__name__)

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE = re.compile(r"\s+")
_DASHES = re.compile(r"[-\u2010-\u2015]")
_WORD_END = re.compile(r"[.,;:!]+(?=\s|$)")  # sentence punctuation after a word ("Yum! Brands", "Corp.")
_QUOTES = "\"'`\u2018\u2019\u201c\u201d\u00ab\u00bb"
_QUOTE_OUTSIDE_WORD = re.compile(rf"(?<!\w)[{_QUOTES}]+|[{_QUOTES}]+(?!\w)")  # not McDonald's apostrophe
LABEL_SCORE = 1.0
ALIAS_SCORE = 0.95


@functools.cache
def _t2s() -> Callable[[str], str]:
    import opencc  # pure Python; loaded only when a name or question has Chinese characters

    return opencc.OpenCC("t2s").convert


def _spaced_cjk(text: str) -> str:
    """Traditional -> simplified, and a space around every CJK ideograph (each one is a word for linking)."""
    if not _CJK.search(text):
        return text
    return _CJK.sub(lambda m: f" {m.group()} ", _t2s()(text))


def _decomposed(text: str) -> str:
    """``text`` in NFKD, combining marks dropped, a space around every CJK ideograph. ASCII text is returned
    as it is: it has no decomposition, combining mark or CJK character (linking folds every question and name
    it meets, most of them ASCII)."""
    if text.isascii():
        return text
    decomposed = _spaced_cjk(unicodedata.normalize("NFKD", text))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_mention(text: str) -> str:
    """Case-, accent-, punctuation- and whitespace-folded form of a name (CJK: one word per character).

    >>> normalize_mention("  Beyoncé   Knowles! "), normalize_mention("法國？")
    ('beyonce knowles', '法 国')
    """
    return _SPACE.sub(" ", _PUNCT.sub(" ", _decomposed(text).casefold())).strip()


def name_key(text: str) -> str:
    """A name's identity: case, accents, whitespace, dashes, quotes around words and sentence punctuation after
    a word folded, any other punctuation kept.

    Two names link as one entity only when their keys agree: "Yum! Brands" is "Yum Brands" and "St. Louis" is
    "St Louis", but "?x" is not a quoted "x" and "C++" is not "C".

    >>> name_key('"x"'), name_key("?x"), name_key("Yum! Brands"), name_key("Coca-Cola")
    ('x', '?x', 'yum brands', 'coca cola')
    """
    folded = _decomposed(text).casefold()
    folded = _SPACE.sub(" ", _DASHES.sub(" ", folded)).strip()
    folded = _QUOTE_OUTSIDE_WORD.sub(" ", folded)  # quoting a name ("x", 'Acme') is not part of it
    return _SPACE.sub(" ", _WORD_END.sub("", folded)).strip()


def _names_in(entity: Entity, method: str) -> list[str]:
    return [entity.label] if method == "label" else list(entity.aliases)


@dataclass(frozen=True)
class Link:
    """One candidate entity for a mention. ``score`` is in [0, 1], higher = more certain."""

    entity: Entity
    score: float
    method: Literal["label", "alias", "embedding"]


@dataclass(frozen=True)
class Mention:
    """A span of a text that names an entity: ``text[start:end]`` in the *normalised* text."""

    surface: str
    start: int
    end: int
    link: Link


class EntityLinker:
    """Links mention strings to entities by label, alias, then embedding similarity, per namespace.

    Each entity is indexed under the namespace whose names (label, aliases) it carries
    (``KnowledgeGraph.named_entities()``); a lookup given ``namespaces`` sees only the names written in those,
    and the entities it returns carry only those names, so one tenant's spelling or alias never links for,
    nor is shown to, another. Without ``namespaces`` a lookup uses the namespaces of the innermost
    :meth:`scoped` block, and outside any, every namespace.

    Args:
        entities: the entities to link to (``KnowledgeGraph.entities()``), as names of ``namespace``; more can
            be added later.
        embedder: optional; enables the embedding stage for mentions with no exact label or alias match.
        min_similarity: cosine similarity below which an embedding match is not returned (MiniLM gives
            ~0.7 for a one-letter misspelling, ~0.6 for "Paris" vs "Paris Hilton").
        namespace: whose names ``entities`` are (the shared world's by default).

    Example:
        >>> from kg._records import Entity
        >>> linker = EntityLinker([Entity("https://factagent.dev/entity/Paris", "Paris", ("City of Light",))])
        >>> linker.link("city of light")[0].entity.label
        'Paris'
    """

    def __init__(
        self,
        entities: Iterable[Entity] = (),
        embedder: Embedder | None = None,
        *,
        min_similarity: float = 0.65,
        namespace: str = WORLD_NAMESPACE,
    ) -> None:
        self._embedder = embedder
        self._min_similarity = min_similarity
        self._lock = threading.Lock()
        self._scope: ContextVar[tuple[str, ...] | None] = ContextVar(f"linker-scope-{id(self)}", default=None)
        # normalised name -> (namespace, entity as that namespace names it)
        self._by_label: dict[str, list[tuple[str, Entity]]] = {}
        self._by_alias: dict[str, list[tuple[str, Entity]]] = {}
        self._views: dict[str, dict[str, Entity]] = {}  # iri -> namespace -> the entity as it names it
        self._max_words = 1
        self._matrix: np.ndarray | None = None  # (n_entities, dim) label embeddings, built on first use
        self._matrix_order: list[str] = []  # iris
        for entity in entities:
            self.add(entity, namespace=namespace)

    def __len__(self) -> int:
        return len(self._views)

    def add(self, entity: Entity, *, namespace: str = WORLD_NAMESPACE) -> None:
        """Index (or re-index, with new aliases) one entity as ``namespace`` names it."""
        with self._lock:
            if entity.iri not in self._views:
                self._matrix = None
            views = self._views.setdefault(entity.iri, {})
            old = views.get(namespace)
            if old is not None:
                self._unindex(namespace, old)
            views[namespace] = entity
            self._index(self._by_label, entity.label, namespace, entity)
            for alias in entity.aliases:
                self._index(self._by_alias, alias, namespace, entity)

    def _index(self, table: dict[str, list[tuple[str, Entity]]], name: str, namespace: str, entity: Entity) -> None:
        key = normalize_mention(name)
        if not key:
            return
        bucket = table.setdefault(key, [])
        if all(e.iri != entity.iri or ns != namespace for ns, e in bucket):
            bucket.append((namespace, entity))
        self._max_words = max(self._max_words, key.count(" ") + 1)

    def _unindex(self, namespace: str, entity: Entity) -> None:
        for table, names in ((self._by_label, [entity.label]), (self._by_alias, list(entity.aliases))):
            for name in names:
                bucket = table.get(normalize_mention(name), [])
                bucket[:] = [(ns, e) for ns, e in bucket if e.iri != entity.iri or ns != namespace]

    @contextmanager
    def scoped(self, namespaces: Sequence[str]) -> Iterator[None]:
        """Lookups in this block (this thread or task) that pass no ``namespaces`` see only these."""
        token = self._scope.set(tuple(namespaces))
        try:
            yield
        finally:
            self._scope.reset(token)

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The namespaces of the innermost :meth:`scoped` block here (``None`` outside any): what the names
        of this lookup's caller are read as, for components that read the graph alongside the linker."""
        return self._scope.get()

    def _seen(self, namespaces: Sequence[str] | None) -> frozenset[str] | None:
        given = self._scope.get() if namespaces is None else namespaces
        if isinstance(given, str):
            raise InvalidInputError("namespaces must be a sequence of namespace names, not one string")
        return None if given is None else frozenset(given)

    def _as_seen(self, iri: str, seen: frozenset[str] | None) -> Entity:
        """The entity with the names the namespaces ``seen`` (``None``: all) gave it."""
        views = [e for ns, e in list(self._views[iri].items()) if seen is None or ns in seen]
        aliases = sorted({a for e in views for a in e.aliases})
        return Entity(iri, views[0].label, tuple(aliases))

    def _hits(self, bucket: Iterable[tuple[str, Entity]], seen: frozenset[str] | None) -> list[Entity]:
        """The entities of ``bucket`` named in ``seen``, once each (with all the names ``seen`` gave them)."""
        iris = dict.fromkeys(e.iri for ns, e in bucket if seen is None or ns in seen)
        return [self._as_seen(iri, seen) for iri in iris]

    def link(self, mention: str, k: int = 5, *, namespaces: Sequence[str] | None = None) -> list[Link]:
        """Candidate entities for ``mention`` among the names of ``namespaces``, best first (at most ``k``).

        Raises:
            InvalidInputError: the mention is not a non-empty string of at most 1000 characters.
        """
        if not isinstance(mention, str) or not mention.strip() or len(mention) > 1_000:
            raise InvalidInputError("a mention must be a non-empty string of at most 1000 characters")
        seen = self._seen(namespaces)
        key, strict = normalize_mention(mention), name_key(mention)
        labelled = self._hits(self._by_label.get(key, []), seen)
        links = [Link(e, LABEL_SCORE, "label") for e in labelled if name_key(e.label) == strict]
        done = {link.entity.iri for link in links}
        links += [
            Link(e, ALIAS_SCORE, "alias")
            for e in self._hits(self._by_alias.get(key, []), seen)
            if e.iri not in done and any(name_key(a) == strict for a in e.aliases)
        ]
        if links or self._embedder is None or not self._views:
            return links[:k]
        return self._by_embedding(self._embedder, mention, k, seen)

    def _by_embedding(self, embedder: Embedder, mention: str, k: int, seen: frozenset[str] | None) -> list[Link]:
        import numpy as np

        with self._lock:
            if self._matrix is None:
                self._matrix_order = list(self._views)
                # the label is the same in every namespace (the IRI is made from it)
                self._matrix = embedder.embed([next(iter(self._views[i].values())).label for i in self._matrix_order])
            matrix, order = self._matrix, self._matrix_order
            visible = np.array([seen is None or not seen.isdisjoint(self._views[i]) for i in order], dtype=bool)
        query = embedder.embed([mention])[0]
        scores = np.where(visible, matrix @ query, -np.inf) if len(order) else matrix @ query
        top = np.argsort(-scores)[:k]
        return [
            Link(self._as_seen(order[i], seen), float(scores[i]), "embedding")
            for i in top
            if float(scores[i]) >= self._min_similarity
        ]

    def find_mentions(self, text: str, *, namespaces: Sequence[str] | None = None) -> list[Mention]:
        """Entity names (labels or aliases) of ``namespaces`` that occur in ``text``, longest first, not
        overlapping.

        A scan over word n-grams of the normalised text; no embedding stage (a whole question is not a name).
        """
        seen = self._seen(namespaces)
        words = normalize_mention(text).split(" ")
        strict = f" {name_key(text)} "  # a hit's own punctuation must be in the text too

        def written(entity: Entity, method: str) -> bool:
            return any(f" {name_key(n)}" in strict or f"{name_key(n)} " in strict for n in _names_in(entity, method))

        stages: tuple[tuple[dict[str, list[tuple[str, Entity]]], float, Literal["label", "alias"]], ...] = (
            (self._by_label, LABEL_SCORE, "label"),
            (self._by_alias, ALIAS_SCORE, "alias"),
        )
        found: list[Mention] = []
        taken = [False] * len(words)
        for size in range(min(self._max_words, len(words)), 0, -1):
            for start in range(len(words) - size + 1):
                if any(taken[start : start + size]):
                    continue
                key = " ".join(words[start : start + size])
                for table, score, method in stages:
                    bucket = table.get(key)
                    if not bucket:  # most n-grams name nothing: skip the per-bucket work
                        continue
                    hits = [e for e in self._hits(bucket, seen) if written(e, method)]
                    if hits:
                        found += [Mention(key, start, start + size, Link(e, score, method)) for e in hits]
                        taken[start : start + size] = [True] * size
                        break
        found.sort(key=lambda m: (-(m.end - m.start), m.start))
        return found
