"""A :class:`~kg.TripleStore` on an embedded Oxigraph database (pyoxigraph, RocksDB on disk, or in memory).

Oxigraph is a SPARQL 1.1 engine written in Rust; queries run in it instead of in rdflib's Python
evaluator, which is what makes this store the fast choice for large graphs (``bench/engines_bench.py``).

Writes: outside a transaction every ``add`` / ``remove`` is one Oxigraph transaction. Inside
:meth:`OxigraphTripleStore.transaction` the writes are buffered (nested blocks keep their own buffer, merged
into the parent when they succeed and dropped when they raise) and the outermost block sends them as ONE
SPARQL update (``DELETE DATA {...} ; INSERT DATA {...}``), which Oxigraph applies all or nothing. Reads
inside a block therefore do not see its writes, as with the remote store. A re-entrant lock serialises
transactions between threads.

Queries are checked with :func:`kg._store_support.prepare_query` (SELECT / ASK only, no ``FROM`` or
``SERVICE``); bindings open the WHERE group as a ``VALUES`` block (:func:`kg._store_support.bind_values`:
checked, N-Triples-encoded terms, never pasted into patterns). Queries run over Oxigraph's own default
graph, which this store keeps as the RDF merge of the named graphs (each triple once, as SPARQL's union
default graph means; Oxigraph's built-in union option would list a triple once per graph holding it).

What differs from the SQLite store, by design of RDF 1.1 and Oxigraph (``canonical_literals``):
literals of the XSD types Oxigraph understands are stored by value and come back in canonical lexical form
(``"007"^^xsd:integer`` -> ``"7"``, ``+00:00`` -> ``Z``), and ``"x"^^xsd:string`` comes back as the plain
literal ``"x"`` (the same RDF term). Pattern lookups with either form match.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib.term import Identifier, Literal, Node, URIRef

from kg._oxigraph_patterns import plan_for
from kg._store import Quad
from kg._store_support import bind_values, check_bindings, check_pattern, check_quads, encode_term, prepare_query
from tools.errors import QueryError, StoreError

__all__ = ["OxigraphTripleStore"]

logger = logging.getLogger(__name__)

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _to_ox(term: Node) -> Any:
    """An rdflib IRI or literal (already checked) as a pyoxigraph term."""
    if type(term) is URIRef:  # the usual case first; pyoxigraph reads the str subclass without a copy
        return ox.NamedNode(term)
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    assert isinstance(term, Literal)
    if term.language:
        return ox.Literal(str(term), language=term.language)
    if term.datatype is not None:
        return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
    return ox.Literal(str(term))


@lru_cache(maxsize=65_536)
def _from_ox(term: Any) -> Node:
    """A pyoxigraph term as rdflib's (simple literals and ``xsd:string`` both as a plain ``Literal``)."""
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        datatype = term.datatype.value
        return Literal(term.value) if datatype == _XSD_STRING else Literal(term.value, datatype=URIRef(datatype))
    raise StoreError(f"the store returned a term this project does not write: {term!r}")


class OxigraphTripleStore:
    """Quads in an Oxigraph database at ``path`` (created if missing), or in memory when ``path`` is None.

    Raises:
        StoreError: the directory cannot be opened (another process holds it, or it is not a database).
    """

    canonical_literals = True  # see the module docstring
    pattern_lookups = True  # plain pattern queries by index lookups (kg._oxigraph_patterns); False: all by SPARQL

    def __init__(self, path: Path | str | None = None) -> None:
        try:
            self._store = ox.Store(str(path)) if path is not None else ox.Store()
        except OSError as exc:
            raise StoreError(f"cannot open the Oxigraph store at {path}: {exc}") from exc
        self.path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._buffers: list[dict[Quad, bool]] = []  # one per open block: quad -> True (add) / False (remove)
        self._owner: int | None = None

    # -- writes -------------------------------------------------------------------------------------------

    def add(self, quads: Iterable[Quad]) -> None:
        self._write(check_quads(quads), present=True)

    def remove(self, quads: Iterable[Quad]) -> None:
        self._write(check_quads(quads), present=False)

    def _write(self, quads: list[Quad], *, present: bool) -> None:
        if not quads:
            return
        with self._lock:
            if self._buffers and self._owner == threading.get_ident():
                buffer = self._buffers[-1]
                for quad in quads:
                    buffer[quad] = present
                return
            self._commit(dict.fromkeys(quads, present))

    def _commit(self, changes: Mapping[Quad, bool]) -> None:
        """Apply net changes as one Oxigraph transaction (one SPARQL update), keeping the merged default graph."""
        removed = [quad for quad, present in changes.items() if not present]
        added = [quad for quad, present in changes.items() if present]
        parts = []
        if removed:
            parts.append("DELETE DATA { " + " ".join(self._data(removed, default=False)) + " }")
            rows = " ".join(f"({encode_term(s)} {encode_term(p)} {encode_term(o)})" for s, p, o, _ in removed)
            parts.append(  # a triple leaves the merged default graph when no named graph holds it any more
                "DELETE { ?s ?p ?o } WHERE { VALUES (?s ?p ?o) { " + rows + " } "
                "FILTER NOT EXISTS { GRAPH ?g { ?s ?p ?o } } }"
            )
        if added:
            parts.append("INSERT DATA { " + " ".join(self._data(added, default=True)) + " }")
        if not parts:
            return
        try:
            self._store.update(" ;\n".join(parts))
        except (OSError, SyntaxError, ValueError) as exc:
            raise StoreError(f"the Oxigraph update failed, nothing was written: {exc}") from exc

    @staticmethod
    def _data(quads: Sequence[Quad], *, default: bool) -> Iterator[str]:
        """Each quad in its named graph, and (``default``) its triple in the default graph (the merge).

        Removals pass ``default=False``: a triple leaves the default graph only when no named graph holds it
        any more, which the conditional ``DELETE`` in :meth:`_commit` decides.
        """
        for s, p, o, g in quads:
            triple = f"{encode_term(s)} {encode_term(p)} {encode_term(o)}"
            yield f"GRAPH {encode_term(g)} {{ {triple} }}" + (f" {triple} ." if default else "")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside commit together when the outermost block exits; a block that raises drops its own."""
        with self._lock:
            self._owner = threading.get_ident()
            self._buffers.append({})
            try:
                yield
            except BaseException:
                self._buffers.pop()
                if not self._buffers:
                    self._owner = None
                raise
            buffer = self._buffers.pop()
            if self._buffers:
                self._buffers[-1].update(buffer)
                return
            self._owner = None
            self._commit(buffer)

    # -- reads --------------------------------------------------------------------------------------------

    def quads(
        self,
        subject: Node | None = None,
        predicate: Node | None = None,
        obj: Node | None = None,
        graph: URIRef | None = None,
    ) -> Iterator[Quad]:
        check_pattern(subject, predicate, obj, graph)
        s, p, o, g = (None if term is None else _to_ox(term) for term in (subject, predicate, obj, graph))
        for quad in self._store.quads_for_pattern(s, p, o, g):
            if isinstance(quad.graph_name, ox.DefaultGraph):
                continue  # this project writes named graphs only
            yield (
                _from_ox(quad.subject),
                _from_ox(quad.predicate),
                _from_ox(quad.object),
                URIRef(quad.graph_name.value),
            )

    def query(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        prepared = prepare_query(sparql)  # SELECT / ASK only; no FROM, no SERVICE (QueryError otherwise)
        checked = check_bindings(bindings)
        plan = plan_for(sparql, tuple(checked)) if self.pattern_lookups else None
        if plan is not None:  # a plain pattern query: index lookups, the rows Oxigraph's engine would give
            bound = {}
            for name, value in checked.items():  # (a loop, not a comprehension: no function call per query)
                bound[name] = _to_ox(value)
            try:
                rows = plan.run(self._store, bound, merged=True)  # every write keeps the default graph the merge
            except OSError as exc:
                raise StoreError(f"the Oxigraph lookup failed: {exc}") from exc
            if plan.ask:
                return [(Literal(rows[0][0]),)]
            if not rows:  # most bound lookups
                return []
            return [tuple([None if value is None else _from_ox(value) for value in row]) for row in rows]
        try:
            result = self._store.query(bind_values(sparql, checked))
        except SyntaxError as exc:
            raise QueryError(f"Oxigraph rejected the query: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise StoreError(f"the Oxigraph query failed: {exc}") from exc
        if isinstance(result, ox.QueryBoolean) or prepared.algebra.name == "AskQuery":
            return [(Literal(bool(result)),)]
        if not isinstance(result, ox.QuerySolutions):  # prepare_query admits SELECT and ASK only
            raise QueryError("only SELECT and ASK queries are supported")
        names = [variable.value for variable in result.variables]
        return [tuple(None if (value := row[name]) is None else _from_ox(value) for name in names) for row in result]

    def __len__(self) -> int:
        quads = self._store.quads_for_pattern(None, None, None, None)
        return sum(1 for quad in quads if not isinstance(quad.graph_name, ox.DefaultGraph))

    def bulk_load(self, quads: Iterable[Quad], *, batch: int = 100_000) -> int:
        """Add many quads fast (Oxigraph's bulk loader, not transactional): for first loads and benchmarks.

        Ends with :meth:`optimize`: on the uncompacted database the loader leaves, bound lookups were several
        times slower (the README's engines table, 1M quads).

        Returns:
            How many quads were passed in.
        """
        count = 0
        chunk: list[Quad] = []
        for quad in quads:
            chunk.append(quad)
            if len(chunk) >= batch:
                count += self._bulk(chunk)
                chunk = []
        count += self._bulk(chunk) if chunk else 0
        self.optimize()
        return count

    def optimize(self) -> None:
        """Compact the database (Oxigraph's ``optimize``: a full RocksDB compaction; seconds at 1M quads).

        Raises:
            StoreError: the compaction failed (the data is unchanged).
        """
        try:
            self._store.optimize()
        except OSError as exc:
            raise StoreError(f"the Oxigraph compaction failed: {exc}") from exc

    def _bulk(self, chunk: list[Quad]) -> int:
        checked = check_quads(chunk)
        default = ox.DefaultGraph()
        self._store.bulk_extend(
            ox.Quad(_to_ox(s), _to_ox(p), _to_ox(o), graph) for s, p, o, g in checked for graph in (_to_ox(g), default)
        )
        return len(checked)

    def close(self) -> None:
        try:
            self._store.flush()
        except OSError as exc:  # in-memory stores have nothing to flush on some versions
            logger.debug("flush on close: %s", exc)
