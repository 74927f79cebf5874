"""An in-process :class:`~kg.TripleStore` over an rdflib ``Dataset`` (tests, scratch graphs, no persistence)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal as TypingLiteral

from rdflib.term import Identifier, Node, URIRef

from kg._sparql_eval import QuadDataset, run_query
from kg._store import Quad
from kg._store_support import check_bindings, check_pattern, check_quads

__all__ = ["MemoryTripleStore"]

_Op = tuple[TypingLiteral["add", "remove"], Quad]


class MemoryTripleStore:
    """A :class:`~kg.TripleStore` held in memory; thread-safe, with undo-log transactions.

    ``transaction()`` records every quad an add or remove actually changed and undoes them, newest first,
    if the block raises; nested transactions undo only their own changes. The whole block holds the store's
    lock, so other threads never see a half-applied batch.

    Example:
        >>> from rdflib import URIRef
        >>> store = MemoryTripleStore()
        >>> store.add([(URIRef("urn:s"), URIRef("urn:p"), URIRef("urn:o"), URIRef("urn:g"))])
        >>> len(store)
        1
    """

    def __init__(self) -> None:
        self._dataset = QuadDataset()
        self._lock = threading.RLock()
        self._journals: list[list[_Op]] = []  # one undo log per open (nested) transaction
        self._count = 0

    def _contains(self, quad: Quad) -> bool:
        s, p, o, g = quad
        return (s, p, o) in self._dataset.get_context(g)

    def _apply(self, op: TypingLiteral["add", "remove"], quad: Quad) -> None:
        s, p, o, g = quad
        if op == "add":
            self._dataset.get_context(g).add((s, p, o))
            self._count += 1
        else:
            self._dataset.get_context(g).remove((s, p, o))
            self._count -= 1
        if self._journals:
            self._journals[-1].append((op, quad))

    def add(self, quads: Iterable[Quad]) -> None:
        """Add quads; ones already present are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is added.
        """
        batch = check_quads(quads)
        with self._lock:
            for quad in batch:
                if not self._contains(quad):
                    self._apply("add", quad)

    def remove(self, quads: Iterable[Quad]) -> None:
        """Remove exactly these quads; missing ones are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is removed.
        """
        batch = check_quads(quads)
        with self._lock:
            for quad in batch:
                if self._contains(quad):
                    self._apply("remove", quad)

    def quads(
        self,
        subject: Node | None = None,
        predicate: Node | None = None,
        obj: Node | None = None,
        graph: URIRef | None = None,
    ) -> Iterator[Quad]:
        """Every stored quad matching the pattern (``None`` is a wildcard), as a snapshot.

        Raises:
            InvalidInputError: a bound term no quad could hold (a blank node, a relative IRI, ...).
        """
        check_pattern(subject, predicate, obj, graph)
        context = self._dataset.get_context(graph) if graph is not None else None
        with self._lock:
            found: list[Quad] = [
                (s, p, o, g)
                for s, p, o, g in self._dataset.quads((subject, predicate, obj, context))
                # rdflib lists every graph of a matching triple, not only ``graph``
                if isinstance(g, URIRef) and (graph is None or g == graph)
            ]
        return iter(found)

    def query(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        """Run SELECT/ASK over all graphs (the default graph is their union).

        Raises:
            QueryError: malformed query or bindings, or not SELECT/ASK.
        """
        checked = check_bindings(bindings)
        with self._lock:
            return run_query(self._dataset, sparql, checked)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Adds/removes inside apply together, or are undone if the block raises."""
        with self._lock:
            self._journals.append([])
            try:
                yield
            except BaseException:
                journal = self._journals.pop()
                for op, quad in reversed(journal):
                    s, p, o, g = quad
                    if op == "add":
                        self._dataset.get_context(g).remove((s, p, o))
                        self._count -= 1
                    else:
                        self._dataset.get_context(g).add((s, p, o))
                        self._count += 1
                raise
            else:
                journal = self._journals.pop()
                if self._journals:  # an outer transaction may still undo these
                    self._journals[-1].extend(journal)

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        """Nothing to release; present for the protocol."""
