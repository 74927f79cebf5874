"""A :class:`~kg.TripleStore` on any SPARQL 1.1 endpoint (Fuseki, Oxigraph, GraphDB, ...), through rdflib.

:class:`SPARQLEndpointStore` drives rdflib's ``SPARQLUpdateStore`` (exposed as
:attr:`~SPARQLEndpointStore.rdflib_store`) with ``autocommit=False`` and ``dirty_reads=True``: writes go
into its buffer of pending updates (``addN`` for adds, ``update("DELETE DATA ...")`` for removes),
``commit()`` sends the whole buffer as ONE update request and ``rollback()`` drops it. Outside a
transaction each write is committed at once; inside :meth:`SPARQLEndpointStore.transaction` the commit
happens when the outermost block exits, or ``rollback()`` when it raises. Reads (``query`` with
bindings as a ``VALUES`` block opening the WHERE group) never flush the buffer, so reads inside a
transaction do not see its writes.

Only the two HTTP calls are replaced (:class:`_EndpointUpdateStore`): rdflib's ``SPARQLConnector`` passes
no timeout to ``urlopen`` and, for a POSTed query, returns an ``(code, message, None)`` tuple instead of
raising, so a failure could pass silently. The replacements send the same requests (query as a form,
update as ``application/sparql-update``) with a timeout and translate failures at this boundary::

    HTTP 400 / 413 / 414 on a query      -> QueryError   (the endpoint rejected the query itself)
    any other HTTP error, unreachable,
    timeout, malformed results           -> StoreError   (nothing of a failed update was applied by us)

Two more rdflib defaults are not used, for safety: terms reach SPARQL text through
:func:`kg._store_support.encode_term` (passed as ``node_to_sparql``) after
:func:`~kg._store_support.check_term`, because ``Literal.n3()`` writes a multi-line string as a
triple-quoted literal it does not always escape correctly; and removals are ``DELETE DATA`` rather than
``SPARQLUpdateStore.remove``, which turns a falsy object such as ``Literal("")`` or ``Literal(0)`` into the
wildcard ``?O`` and would delete every object of that subject and predicate.
"""

from __future__ import annotations

import http.client
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from io import BytesIO
from typing import Any, cast
from urllib.parse import urlencode

from rdflib.graph import Graph
from rdflib.plugin import PluginException
from rdflib.plugins.stores.sparqlstore import SPARQLUpdateStore
from rdflib.query import Result
from rdflib.term import BNode, Identifier, Literal, Node, URIRef, Variable

from kg._store import Quad
from kg._store_support import (
    bind_values,
    check_bindings,
    check_pattern,
    check_quads,
    encode_term,
    prepare_query,
    result_rows,
)
from tools.errors import InvalidInputError, QueryError, StoreError

__all__ = ["SPARQLEndpointStore"]

logger = logging.getLogger(__name__)

# Statuses with which an endpoint rejects the query itself (SPARQL 1.1 Protocol: 400 for a malformed one;
# 413/414 for one too large). Others (401, 403, 404, 5xx, ...) are about the endpoint, not the query.
_QUERY_REJECTED = frozenset({400, 413, 414})


def _node_to_sparql(node: Node) -> str:
    """``node_to_sparql`` for rdflib: checked terms in one-line N-Triples form, rdflib's own ``?S``-style variables."""
    if isinstance(node, Variable):
        if not str(node).isidentifier():
            raise InvalidInputError(f"not a plain SPARQL variable name: {str(node)!r}")
        return f"?{node}"
    return encode_term(node)  # BNode and other non-terms raise InvalidInputError


class _EndpointUpdateStore(SPARQLUpdateStore):
    """rdflib's ``SPARQLUpdateStore`` whose two HTTP calls have a timeout and raise on failure.

    rdflib reaches the connector through two hooks, ``SPARQLStore._query`` (every read) and
    ``SPARQLUpdateStore._update`` (``commit``); they are overridden here with the connector's own requests
    (a ``POST_FORM`` query, an ``application/sparql-update`` body). ``query`` and ``update`` themselves
    cannot be overridden: on this class they are the store-level methods (bindings, buffering).
    """

    def __init__(self, query_endpoint: str, update_endpoint: str, timeout_s: float) -> None:
        super().__init__(
            query_endpoint,
            update_endpoint,
            autocommit=False,  # writes wait in the buffer until commit(): one request per batch
            dirty_reads=True,  # reads do not commit the buffer (that would break a transaction in two)
            node_to_sparql=_node_to_sparql,
            returnFormat="json",
            method="POST_FORM",
        )
        self.timeout_s = timeout_s

    def _query(self, query: str, default_graph: str | None = None) -> Result:
        self._queries += 1
        params = {"query": query}
        if default_graph is not None and not isinstance(default_graph, BNode):
            params["default-graph-uri"] = default_graph
        url = cast(str, self.query_endpoint)
        body, content_type = self._post(
            url, urlencode(params).encode("utf-8"), "application/x-www-form-urlencoded", is_query=True
        )
        try:
            return Result.parse(BytesIO(body), content_type=content_type)
        except (PluginException, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"SPARQL endpoint {url} sent results rdflib cannot read ({content_type}): {exc}") from exc

    def _update(self, update: str) -> None:
        self._updates += 1
        url = cast(str, self.update_endpoint)
        self._post(url, update.encode("utf-8"), "application/sparql-update; charset=UTF-8", is_query=False)

    def _post(self, url: str, data: bytes, content_type: str, *, is_query: bool) -> tuple[bytes, str]:
        """POST one request; the answer's body and content type. Every failure raises."""
        headers = {"Content-Type": content_type, "Accept": self.response_mime_types()}
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        slow = f"SPARQL endpoint {url} did not answer within {self.timeout_s} s"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return cast(bytes, response.read()), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            if is_query and exc.code in _QUERY_REJECTED:
                raise QueryError(f"the endpoint rejected the query (HTTP {exc.code}): {detail}") from exc
            raise StoreError(f"SPARQL endpoint {url} answered HTTP {exc.code}: {detail}") from exc
        except TimeoutError as exc:
            raise StoreError(slow) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                raise StoreError(slow) from exc
            raise StoreError(f"SPARQL endpoint {url} is unreachable: {exc}") from exc

    # -- the pending-update buffer (SPARQLUpdateStore._edits), for nested transactions -----------------

    def pending_updates(self) -> int:
        """How many update operations wait for ``commit()``."""
        return len(self._edits or [])

    def discard_updates_after(self, mark: int) -> None:
        """Drop the operations buffered since ``pending_updates()`` returned ``mark`` (a savepoint)."""
        if self._edits is not None:
            del self._edits[mark:]


class SPARQLEndpointStore:
    """A :class:`~kg.TripleStore` backed by a remote SPARQL 1.1 query + update endpoint.

    Args:
        query_endpoint: URL of the SPARQL query service.
        update_endpoint: URL of the SPARQL update service.
        timeout_s: seconds to wait for each HTTP request.
        maintain_default_graph: keep the endpoint's default graph as the RDF merge of the named graphs (each
            triple once), written in the same update request as the quads. For endpoints whose default graph
            is a graph of its own (``oxigraph serve`` without ``--union-default-graph``); an endpoint that
            offers a union default graph lists a triple once per graph holding it, which SPARQL's merge
            semantics (and the store contract) do not allow.

    Example:
        >>> store = SPARQLEndpointStore("http://localhost:3030/kg/query", "http://localhost:3030/kg/update")
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        query_endpoint: str,
        update_endpoint: str,
        timeout_s: float = 30.0,
        *,
        maintain_default_graph: bool = False,
    ) -> None:
        self.query_endpoint = query_endpoint
        self.maintain_default_graph = maintain_default_graph
        self.update_endpoint = update_endpoint
        self.timeout_s = timeout_s
        self._rdf = _EndpointUpdateStore(query_endpoint, update_endpoint, timeout_s)
        # One writer at a time: rdflib's buffer is shared, and a transaction holds the lock until it exits.
        self._lock = threading.RLock()
        self._depth = 0  # open transaction blocks (nested ones only set savepoints)

    @property
    def rdflib_store(self) -> SPARQLUpdateStore:
        """The rdflib ``SPARQLUpdateStore`` doing the work (autocommit off, dirty reads on).

        Writes made on it directly skip this class's input checks and wait for its ``commit()``.
        """
        return self._rdf

    # -- writing through SPARQLUpdateStore's buffer ----------------------------------------------------

    def _commit(self) -> None:
        """Send the buffer as one update request; drop it if that fails (nothing is left to resend)."""
        try:
            self._rdf.commit()
        except BaseException:
            self._rdf.rollback()
            raise

    def _graphs(self, batch: Sequence[Quad]) -> dict[URIRef, Graph]:
        """The rdflib context of each named graph in the batch (``addN`` takes Graphs, not IRIs)."""
        return {g: Graph(store=self._rdf, identifier=g) for g in {quad[3] for quad in batch}}

    def add(self, quads: Iterable[Quad]) -> None:
        """Add quads (``INSERT DATA`` through ``SPARQLUpdateStore.addN``); ones already present are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is sent.
            StoreError: the endpoint failed or is unreachable.
        """
        batch = check_quads(quads)
        if not batch:
            return
        graphs = self._graphs(batch)
        with self._lock:
            self._rdf.addN((s, p, o, graphs[g]) for s, p, o, g in batch)
            if self.maintain_default_graph:
                triples = "\n".join(f"{encode_term(s)} {encode_term(p)} {encode_term(o)} ." for s, p, o, _ in batch)
                self._rdf.update(f"INSERT DATA {{ {triples} }}\n")
            if self._depth == 0:
                self._commit()

    def remove(self, quads: Iterable[Quad]) -> None:
        """Remove exactly these quads (``DELETE DATA``, one operation per graph); missing ones are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is sent.
            StoreError: the endpoint failed or is unreachable.
        """
        batch = check_quads(quads)
        if not batch:
            return
        by_graph: dict[URIRef, list[str]] = {}
        for s, p, o, g in batch:
            by_graph.setdefault(g, []).append(f"{encode_term(s)} {encode_term(p)} {encode_term(o)} .")
        with self._lock:
            for g, triples in by_graph.items():
                body = "\n".join(triples)
                # laid out like addN's INSERT DATA; update() only buffers it (autocommit is off)
                self._rdf.update(f"DELETE DATA {{ GRAPH {encode_term(g)} {{ {body} }} }}\n")
            if self.maintain_default_graph:  # a triple leaves the merge when no named graph holds it any more
                rows = " ".join(f"({encode_term(s)} {encode_term(p)} {encode_term(o)})" for s, p, o, _ in batch)
                self._rdf.update(
                    f"DELETE {{ ?s ?p ?o }} WHERE {{ VALUES (?s ?p ?o) {{ {rows} }} "
                    "FILTER NOT EXISTS { GRAPH ?g { ?s ?p ?o } } }\n"
                )
            if self._depth == 0:
                self._commit()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Buffer adds/removes and send them as one update request on exit; drop them if the block raises.

        A nested block is a savepoint: if it raises, only its own writes are dropped.

        Raises:
            StoreError: the endpoint rejected or never received the batch (then nothing was applied).
        """
        with self._lock:
            outermost = self._depth == 0
            mark = self._rdf.pending_updates()
            self._depth += 1
            try:
                yield
            except BaseException:
                if outermost:
                    logger.debug("rolling back %d buffered update operations", self._rdf.pending_updates())
                    self._rdf.rollback()
                else:
                    self._rdf.discard_updates_after(mark)
                raise
            finally:
                self._depth -= 1
            if outermost:
                self._commit()

    # -- reading through SPARQLUpdateStore.query -------------------------------------------------------

    def _select(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        # bindings open the WHERE group (bind_values), not rdflib's trailing VALUES: a trailing block is joined
        # after the group, so BIND(?n + 1 AS ?x) would not see ?n on a standards-following endpoint
        return result_rows(self._rdf.query(bind_values(sparql, bindings or {})))

    def quads(
        self,
        subject: Node | None = None,
        predicate: Node | None = None,
        obj: Node | None = None,
        graph: URIRef | None = None,
    ) -> Iterator[Quad]:
        """Every quad matching the pattern (``None`` is a wildcard), fetched in one SELECT.

        Raises:
            InvalidInputError: a bound term no quad could hold.
            StoreError: the endpoint failed or is unreachable.
        """
        check_pattern(subject, predicate, obj, graph)
        pattern = (("s", subject), ("p", predicate), ("o", obj), ("g", graph))
        bound = {name: term for name, term in pattern if isinstance(term, Identifier)}  # checked: IRIs, literals
        found: list[Quad] = []
        for row in self._select("SELECT ?s ?p ?o ?g WHERE { GRAPH ?g { ?s ?p ?o } }", bound):
            s, p, o, g = row
            if s is not None and p is not None and o is not None and isinstance(g, URIRef):
                found.append((s, p, o, g))
        return iter(found)

    def query(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        """Run SELECT/ASK at the endpoint; bindings are sent as a ``VALUES`` block opening the WHERE group.

        The query is parsed locally first, so malformed SPARQL raises before any request.

        Raises:
            QueryError: malformed query or bindings, not SELECT/ASK, or the endpoint rejected it.
            StoreError: the endpoint failed or is unreachable.
        """
        checked = check_bindings(bindings)
        prepare_query(sparql)
        return self._select(sparql, checked)

    def __len__(self) -> int:
        rows = self._select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
        value: Any = rows[0][0] if rows else None
        return int(value.toPython()) if isinstance(value, Literal) else 0

    def close(self) -> None:
        """Nothing is held open between requests; pending writes exist only inside a transaction."""
