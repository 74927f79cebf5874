"""A read-only rdflib ``Store`` over the SQLite store's tables, so rdflib's SPARQL engine can query them.

Only :meth:`kg.SQLiteTripleStore.query` uses it, while holding the database lock inside one read snapshot;
that is why the generators below may keep a cursor open between ``yield``s.

Graph semantics follow rdflib's ``Dataset(default_union=True)``: ``context=None`` is the union of all named
graphs (each distinct triple once), a named graph's context is that graph, and rdflib's own default graph
(``urn:x-rdflib:default``) is always empty because quads only ever go into named graphs.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from rdflib.graph import Graph
from rdflib.store import Store
from rdflib.term import Literal, Node, URIRef

from kg._store_support import check_term, decode_term
from tools.errors import InvalidInputError

if TYPE_CHECKING:
    from kg._sqlite_store import SQLiteTripleStore

__all__ = ["SQLiteRDFStore"]

_JOIN = "JOIN kg_terms ts ON ts.id = q.s JOIN kg_terms tp ON tp.id = q.p JOIN kg_terms tob ON tob.id = q.o"


def _storable(term: Any) -> bool:
    """Whether a pattern term could be stored at all (rdflib may pass variables, blank nodes, ...)."""
    if not isinstance(term, (URIRef, Literal)):
        return False
    try:
        check_term(term, "term")
    except InvalidInputError:
        return False
    return True


class SQLiteRDFStore(Store):
    """rdflib's view of a :class:`~kg.SQLiteTripleStore` (reads only; writes go through the TripleStore)."""

    context_aware = True
    graph_aware = True
    formula_aware = False
    transaction_aware = False

    def __init__(self, owner: SQLiteTripleStore) -> None:
        super().__init__()
        self._owner = owner

    def _ids(self, conn: Any, s: Any, p: Any, o: Any, context: Any) -> dict[str, int] | None:
        """Bound column -> id, or ``None`` when the pattern cannot match anything."""
        pattern: dict[str, Node | None] = {"s": s, "p": p, "o": o}
        if context is not None:
            identifier = getattr(context, "identifier", context)
            pattern["g"] = identifier
            if identifier is None:
                return None
        if any(term is not None and not _storable(term) for term in pattern.values()):
            return None
        return self._owner.pattern_ids(conn, pattern)

    def triples(
        self, triple_pattern: Any, context: Any = None
    ) -> Generator[tuple[tuple[Node, Node, Node], Iterator[Graph]], None, None]:
        """Triples matching the pattern in ``context`` (a named graph) or, if ``None``, in any graph."""
        s, p, o = triple_pattern
        with self._owner.db.read() as conn:
            ids = self._ids(conn, s, p, o, context)
            if ids is None:
                return
            args = list(ids.values())
            if context is not None:
                where = " AND ".join(f"q.{col} = ?" for col in ids)
                cursor = conn.execute(f"SELECT ts.term, tp.term, tob.term FROM kg_quads q {_JOIN} WHERE {where}", args)
                graphs = [context]
                for row in cursor:
                    yield (decode_term(row[0]), decode_term(row[1]), decode_term(row[2])), iter(graphs)
                return
            # The union graph: each distinct triple once, with a lazy list of the graphs holding it.
            where = " AND ".join(f"{col} = ?" for col in ids) or "1"
            cursor = conn.execute(
                "SELECT ts.term, tp.term, tob.term, q.s, q.p, q.o "
                f"FROM (SELECT DISTINCT s, p, o FROM kg_quads WHERE {where}) q {_JOIN}",
                args,
            )
            for row in cursor:
                triple = (decode_term(row[0]), decode_term(row[1]), decode_term(row[2]))
                yield triple, self._graphs_of(row[3], row[4], row[5])

    def _graphs_of(self, s: int, p: int, o: int) -> Iterator[Graph]:
        with self._owner.db.read() as conn:
            rows = conn.execute(
                "SELECT t.term FROM kg_quads q JOIN kg_terms t ON t.id = q.g WHERE q.s = ? AND q.p = ? AND q.o = ?",
                (s, p, o),
            ).fetchall()
        for (term,) in rows:
            yield Graph(store=self, identifier=decode_term(term))  # type: ignore[arg-type]

    def graphs_matching(self, s: Node | None, p: Node | None, o: Node | None) -> set[URIRef]:
        """Named graphs holding a triple matching the pattern (used for ``GRAPH ?g {...}``)."""
        with self._owner.db.read() as conn:
            ids = self._ids(conn, s, p, o, None)
            if ids is None:
                return set()
            where = " AND ".join(f"q.{col} = ?" for col in ids) or "1"
            rows = conn.execute(
                f"SELECT t.term FROM kg_terms t WHERE t.id IN (SELECT DISTINCT q.g FROM kg_quads q WHERE {where})",
                list(ids.values()),
            ).fetchall()
        return {URIRef(term[1:-1]) for (term,) in rows}

    def quads_matching(
        self, s: Node | None, p: Node | None, o: Node | None
    ) -> Iterator[tuple[Node, Node, Node, URIRef]]:
        """Quads matching the triple pattern in any named graph (used for ``GRAPH ?g { BGP }``)."""
        with self._owner.db.read() as conn:
            ids = self._ids(conn, s, p, o, None)
            if ids is None:
                return
            where = " AND ".join(f"q.{col} = ?" for col in ids) or "1"
            cursor = conn.execute(
                f"SELECT ts.term, tp.term, tob.term, tg.term FROM kg_quads q {_JOIN} "
                f"JOIN kg_terms tg ON tg.id = q.g WHERE {where}",
                list(ids.values()),
            )
            for row in cursor:
                yield decode_term(row[0]), decode_term(row[1]), decode_term(row[2]), URIRef(row[3][1:-1])

    def __len__(self, context: Any = None) -> int:
        with self._owner.db.read() as conn:
            if context is None:
                return int(conn.execute("SELECT COUNT(*) FROM (SELECT DISTINCT s, p, o FROM kg_quads)").fetchone()[0])
            ids = self._ids(conn, None, None, None, context)
            if ids is None:
                return 0
            return int(conn.execute("SELECT COUNT(*) FROM kg_quads WHERE g = ?", (ids["g"],)).fetchone()[0])

    def contexts(self, triple: Any = None) -> Generator[Graph, None, None]:
        """Every named graph (holding ``triple`` if given)."""
        with self._owner.db.read() as conn:
            if triple is None:
                rows = conn.execute("SELECT t.term FROM kg_terms t WHERE t.id IN (SELECT DISTINCT g FROM kg_quads)")
                terms = [term for (term,) in rows]
            else:
                terms = [str(g.identifier) for _, graphs in self.triples(triple) for g in graphs]
                terms = [f"<{t}>" for t in terms]
        for term in terms:
            yield Graph(store=self, identifier=decode_term(term))  # type: ignore[arg-type]

    # Graphs exist exactly while they hold quads; rdflib's bookkeeping calls are no-ops.
    def add_graph(self, graph: Graph) -> None:
        pass

    def remove_graph(self, graph: Graph) -> None:
        raise NotImplementedError("the SQLite store is read-only through rdflib; use SQLiteTripleStore.remove")

    def add(self, triple: Any, context: Any, quoted: bool = False) -> None:
        raise NotImplementedError("the SQLite store is read-only through rdflib; use SQLiteTripleStore.add")

    def remove(self, triple: Any, context: Any = None) -> None:
        raise NotImplementedError("the SQLite store is read-only through rdflib; use SQLiteTripleStore.remove")
