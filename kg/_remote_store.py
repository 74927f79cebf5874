"""A :class:`~kg.TripleStore` on any SPARQL 1.1 endpoint (Fuseki, Oxigraph, GraphDB, ...).

Speaks the SPARQL 1.1 Protocol itself (form-encoded POST, JSON results parsed by rdflib) instead of going
through rdflib's ``SPARQLUpdateStore``: that connector has no request timeout and, for POST, returns an
error tuple instead of raising, so a failed write could pass silently. The semantics are those of
``SPARQLUpdateStore`` with autocommit off: inside :meth:`SPARQLEndpointStore.transaction` updates are
buffered and sent as ONE update request when the block exits, or dropped if it raises. Reads inside a
transaction do not see its buffered writes.

Terms only reach the SPARQL text through :func:`kg._store_support.encode_term` after
:func:`~kg._store_support.check_term`: IRIs are checked to contain no ``<>"{}|^`\\`` or whitespace, and
literals are escaped on one line, so no value can close a string or an IRI and add its own syntax. Bound
terms of :meth:`~SPARQLEndpointStore.quads` and query bindings travel in a ``VALUES`` block.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from io import BytesIO
from typing import Any, cast
from urllib.parse import urlencode

from rdflib.term import Identifier, Literal, Node, URIRef

from kg._store import Quad
from kg._store_support import check_bindings, check_pattern, check_quads, encode_term, prepare_query, result_rows
from tools.errors import QueryError, StoreError

__all__ = ["SPARQLEndpointStore"]

logger = logging.getLogger(__name__)

_RESULTS_JSON = "application/sparql-results+json"
_MAX_UPDATE_QUADS = 5_000  # quads per INSERT/DELETE DATA operation, to keep each request body moderate


def _values(bindings: Mapping[str, Node]) -> str:
    """A one-row ``VALUES`` block; names were checked as SPARQL variable names, terms by check_term."""
    if not bindings:
        return ""
    names = " ".join(f"?{name}" for name in bindings)
    terms = " ".join(encode_term(term) for term in bindings.values())
    return f"VALUES ({names}) {{ ({terms}) }}"


def _data_operations(verb: str, quads: Sequence[Quad]) -> list[str]:
    """``INSERT DATA`` / ``DELETE DATA`` operations, grouped by graph."""
    operations = []
    for start in range(0, len(quads), _MAX_UPDATE_QUADS):
        by_graph: dict[URIRef, list[str]] = {}
        for s, p, o, g in quads[start : start + _MAX_UPDATE_QUADS]:
            by_graph.setdefault(g, []).append(f"{encode_term(s)} {encode_term(p)} {encode_term(o)} .")
        body = "\n".join(f"GRAPH {encode_term(g)} {{ {' '.join(lines)} }}" for g, lines in by_graph.items())
        operations.append(f"{verb} DATA {{\n{body}\n}}")
    return operations


class SPARQLEndpointStore:
    """A :class:`~kg.TripleStore` backed by a remote SPARQL 1.1 query + update endpoint.

    Args:
        query_endpoint: URL of the SPARQL query service.
        update_endpoint: URL of the SPARQL update service.
        timeout_s: seconds to wait for each HTTP request.

    Example:
        >>> store = SPARQLEndpointStore("http://localhost:3030/kg/query", "http://localhost:3030/kg/update")
        ... # doctest: +SKIP
    """

    def __init__(self, query_endpoint: str, update_endpoint: str, timeout_s: float = 30.0) -> None:
        self.query_endpoint = query_endpoint
        self.update_endpoint = update_endpoint
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._pending: list[list[str]] = []  # buffered update operations, one list per open transaction

    # -- HTTP -----------------------------------------------------------------------------------------

    def _post(self, url: str, field: str, text: str, accept: str) -> bytes:
        body = urlencode({field: text}).encode("utf-8")
        request = urllib.request.Request(
            url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": accept},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return cast(bytes, response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            if exc.code == 400 and field == "query":
                raise QueryError(f"the endpoint rejected the query: {detail}") from exc
            raise StoreError(f"SPARQL endpoint {url} answered HTTP {exc.code}: {detail}") from exc
        except TimeoutError as exc:
            raise StoreError(f"SPARQL endpoint {url} did not answer within {self.timeout_s} s") from exc
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(getattr(exc, "reason", None), TimeoutError):
                raise StoreError(f"SPARQL endpoint {url} did not answer within {self.timeout_s} s") from exc
            raise StoreError(f"SPARQL endpoint {url} is unreachable: {exc}") from exc

    def _select(self, sparql: str) -> list[Sequence[Node | None]]:
        from rdflib.query import Result

        raw = self._post(self.query_endpoint, "query", sparql, _RESULTS_JSON)
        try:
            result = Result.parse(BytesIO(raw), format="json")
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"SPARQL endpoint {self.query_endpoint} sent malformed results: {exc}") from exc
        return result_rows(result)

    def _update(self, operations: list[str]) -> None:
        if not operations:
            return
        if self._pending:
            self._pending[-1].extend(operations)
            return
        self._post(self.update_endpoint, "update", " ;\n".join(operations), "*/*")

    # -- TripleStore ----------------------------------------------------------------------------------

    def add(self, quads: Iterable[Quad]) -> None:
        """Add quads (``INSERT DATA``); ones already present are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is sent.
            StoreError: the endpoint failed or is unreachable.
        """
        batch = check_quads(quads)
        with self._lock:
            self._update(_data_operations("INSERT", batch))

    def remove(self, quads: Iterable[Quad]) -> None:
        """Remove exactly these quads (``DELETE DATA``); missing ones are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is sent.
            StoreError: the endpoint failed or is unreachable.
        """
        batch = check_quads(quads)
        with self._lock:
            self._update(_data_operations("DELETE", batch))

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
        bound = {name: term for name, term in pattern if term is not None}
        sparql = f"SELECT ?s ?p ?o ?g WHERE {{ {_values(bound)} GRAPH ?g {{ ?s ?p ?o }} }}"
        found: list[Quad] = []
        for row in self._select(sparql):
            s, p, o, g = row
            if s is not None and p is not None and o is not None and isinstance(g, URIRef):
                found.append((s, p, o, g))
        return iter(found)

    def query(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        """Run SELECT/ASK at the endpoint; bindings are sent as a trailing ``VALUES`` block.

        The query is parsed locally first, so malformed SPARQL raises before any request.

        Raises:
            QueryError: malformed query or bindings, or not SELECT/ASK.
            StoreError: the endpoint failed or is unreachable.
        """
        checked = check_bindings(bindings)
        prepare_query(sparql)
        if checked:
            sparql = f"{sparql}\n{_values(checked)}"
        return self._select(sparql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Buffer adds/removes and send them as one update request on exit; drop them if the block raises.

        Raises:
            StoreError: the endpoint rejected or never received the batch (then nothing was applied).
        """
        with self._lock:
            self._pending.append([])
            try:
                yield
            except BaseException:
                dropped = self._pending.pop()
                logger.debug("dropping %d buffered update operations", len(dropped))
                raise
            operations = self._pending.pop()
            self._update(operations)  # into the outer buffer, or sent now

    def __len__(self) -> int:
        rows = self._select("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }")
        value: Any = rows[0][0] if rows else None
        return int(value.toPython()) if isinstance(value, Literal) else 0

    def close(self) -> None:
        """Nothing is held open between requests."""
