"""The ``TripleStore`` seam: where the knowledge graph's quads live.

Implementations: :class:`kg.SQLiteTripleStore` (embedded, in the shared SQLite file),
:class:`kg.OxigraphTripleStore` (embedded Oxigraph database) and :class:`kg.SPARQLEndpointStore` (any SPARQL
1.1 endpoint through rdflib's ``SPARQLUpdateStore``). All pass ``tests/kg/store_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from rdflib.term import Identifier, Node, URIRef

__all__ = ["Quad", "TripleStore"]

# (subject, predicate, object, graph): the graph is always a named graph IRI.
Quad = tuple[Node, Node, Node, URIRef]


@runtime_checkable
class TripleStore(Protocol):
    """A quad store with atomic write batches and SPARQL SELECT/ASK with bound variables."""

    def add(self, quads: Iterable[Quad]) -> None:
        """Add quads (idempotent). Inside ``transaction()`` they commit with the batch."""
        ...

    def remove(self, quads: Iterable[Quad]) -> None:
        """Remove exactly these quads (missing ones are ignored)."""
        ...

    def quads(
        self,
        subject: Node | None = None,
        predicate: Node | None = None,
        obj: Node | None = None,
        graph: URIRef | None = None,
    ) -> Iterator[Quad]:
        """Every stored quad matching the pattern (``None`` is a wildcard)."""
        ...

    def query(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        """Run a SPARQL SELECT (rows) or ASK (one row holding a boolean Literal) over the whole dataset.

        ``bindings`` maps variable names (without ``?``) to rdflib terms; values are never pasted into the
        query text by the caller. Raises QueryError for malformed queries or bindings.
        """
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """All adds/removes inside commit together, or none if the block raises."""
        ...

    def __len__(self) -> int:
        """Number of quads."""
        ...

    def close(self) -> None: ...
