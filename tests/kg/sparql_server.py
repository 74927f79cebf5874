"""A SPARQL 1.1 Protocol endpoint on loopback for FAULT INJECTION only: rdflib's engine behind ``ThreadingHTTPServer``.

The store contract and the KG integration tests run against a real ``oxigraph serve`` process
(``tests/kg/oxigraph_server.py``). This server stays for what a real engine cannot be made to do on demand:
count update requests (batching), answer slowly (timeouts), refuse an update path (failed commits).

Serves one in-memory rdflib ``Dataset`` (default graph = union of the named graphs, like the local stores):

* query:  ``GET /query?query=...``, ``POST /query`` with ``application/sparql-query`` or a form ``query=``;
  results as ``application/sparql-results+json`` (default) or ``+xml`` by ``Accept``.
* update: ``POST /update`` with ``application/sparql-update`` or a form ``update=``; a request is parsed as a
  whole before any operation runs, so a malformed request changes nothing.

Malformed requests get HTTP 400. :class:`SPARQLServer` counts update requests and can delay answers, so
tests can check batching and timeouts.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from rdflib import Dataset, Graph
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.plugins.sparql import prepareQuery, prepareUpdate
from rdflib.term import IdentifiedNode, Literal, Node, URIRef

from kg._sparql_eval import QuadDataset, register_graph_eval

__all__ = ["SPARQLServer", "sparql_endpoint"]


class SPARQLServer:
    """A loopback SPARQL endpoint; use as a context manager.

    Attributes:
        dataset: the served data (tests may inspect it directly).
        update_requests: number of update requests applied.
        delay_s: seconds every answer waits first (to provoke client timeouts).
    """

    def __init__(self, dataset: Dataset | None = None) -> None:
        # QuadDataset: rdflib's Memory store with the union default graph and indexed GRAPH ?g evaluation
        register_graph_eval()
        self.dataset = dataset if dataset is not None else QuadDataset(store="Memory")
        self.lock = threading.Lock()  # rdflib's memory store is not safe for concurrent writers
        self.update_requests = 0
        self.delay_s = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (stdlib signature)
                pass  # keep test output quiet

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = parse_qs(parts.query)
                if parts.path != "/query" or "query" not in params:
                    self._send(404 if parts.path != "/query" else 400, b"expected /query?query=...", "text/plain")
                    return
                self._send(*server.answer_query(params["query"][0], self.headers.get("Accept", "")))

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
                field = "query" if parts.path == "/query" else "update" if parts.path == "/update" else None
                if field is None:
                    self._send(404, b"unknown path", "text/plain")
                    return
                if content_type == "application/x-www-form-urlencoded":
                    values = parse_qs(body).get(field)
                    text = values[0] if values else None
                elif content_type == f"application/sparql-{field}":
                    text = body
                else:
                    text = None
                if text is None:
                    message = f"expected application/sparql-{field} or a form field {field}="
                    self._send(400, message.encode(), "text/plain")
                    return
                if field == "query":
                    self._send(*server.answer_query(text, self.headers.get("Accept", "")))
                else:
                    self._send(*server.answer_update(text))

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        host, port = self._httpd.server_address[:2]
        base = f"http://{host!s}:{port}"
        self.query_url = f"{base}/query"
        self.update_url = f"{base}/update"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="sparql-test-server", daemon=True
        )

    def answer_query(self, text: str, accept: str) -> tuple[int, bytes, str]:
        """Evaluate a query: (HTTP status, body, content type)."""
        time.sleep(self.delay_s)
        try:
            prepared = prepareQuery(text)
        except Exception as exc:  # rdflib raises ParseException or bare Exception (unknown prefix): HTTP 400
            return 400, f"malformed query: {exc}".encode(), "text/plain"
        xml = "sparql-results+xml" in accept
        with self.lock:
            body = self.dataset.query(prepared).serialize(format="xml" if xml else "json")
        assert body is not None  # serialize() without a destination returns bytes
        return 200, body, "application/sparql-results+xml" if xml else "application/sparql-results+json"

    def answer_update(self, text: str) -> tuple[int, bytes, str]:
        """Parse the whole request, then apply it: (HTTP status, body, content type)."""
        time.sleep(self.delay_s)
        data_operations = _parse_data_operations(text)
        if data_operations is not None:
            with self.lock:
                graphs: dict[IdentifiedNode, Graph] = {}
                for verb, quads in data_operations:
                    for s, p, o, g in quads:
                        graph = graphs.get(g)
                        if graph is None:  # (not `or`: an empty Graph is falsy)
                            graph = graphs[g] = self.dataset.graph(g)
                        (graph.add if verb == "INSERT" else graph.remove)((s, p, o))
                self.update_requests += 1
            return 200, b"", "text/plain"
        try:
            prepared = prepareUpdate(text)
        except Exception as exc:
            return 400, f"malformed update: {exc}".encode(), "text/plain"
        with self.lock:
            self.dataset.update(prepared)
            self.update_requests += 1
        return 200, b"", "text/plain"

    def __enter__(self) -> SPARQLServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


_Quads = list[tuple[Node, Node, Node, IdentifiedNode]]

# rdflib's SPARQLUpdateStore joins its buffered operations with "\n;\n"; a ";" on a line of its own is
# also how a person would separate them.
_OPERATION_SEPARATOR = re.compile(r"\n[ \t]*;[ \t]*\n")
_DATA_OPERATION = re.compile(r"\s*(INSERT|DELETE) DATA\s*\{(.*)\}\s*", re.DOTALL)


def _parse_data_operations(text: str) -> list[tuple[str, _Quads]] | None:
    """Fast path for requests made only of ``INSERT DATA`` / ``DELETE DATA`` operations on named graphs.

    rdflib's SPARQL update parser needs ~1.4 ms per triple (14 s for 10k); its TriG parser ~0.05 ms. The
    request is split into operations at lines holding only ``;``, and the bodies of each run of operations
    with the same verb are parsed as one TriG document (order between runs is kept; within a run it does not
    matter). Anything this does not fit returns ``None`` and the caller uses the full SPARQL parser, so the
    fast path never changes what a request means: other operations, a ``;`` inside one line, TriG that does
    not parse, prefix declarations, triples outside ``GRAPH``, blank nodes.
    """
    runs: list[tuple[str, list[str]]] = []
    for operation in _OPERATION_SEPARATOR.split(text):
        match = _DATA_OPERATION.fullmatch(operation)
        if match is None:
            return None
        verb, body = match.group(1), match.group(2)
        if runs and runs[-1][0] == verb:
            runs[-1][1].append(body)
        else:
            runs.append((verb, [body]))
    plain_namespaces = set(Dataset().namespaces())
    operations: list[tuple[str, _Quads]] = []
    for verb, bodies in runs:
        parsed = Dataset()
        try:
            parsed.parse(data="\n".join(bodies), format="trig")
        except Exception:  # any TriG error: let the full SPARQL parser decide
            return None
        if set(parsed.namespaces()) != plain_namespaces:  # @prefix / PREFIX inside the data: not SPARQL
            return None
        quads: _Quads = []
        for s, p, o, g in parsed.quads((None, None, None, None)):
            if not isinstance(g, URIRef) or g == DATASET_DEFAULT_GRAPH_ID:
                return None  # a triple outside GRAPH
            if not all(isinstance(term, (URIRef, Literal)) for term in (s, p, o)):
                return None  # blank nodes: DELETE DATA refuses them, INSERT DATA mints new ones
            quads.append((s, p, o, g))
        operations.append((verb, quads))
    return operations


@contextmanager
def sparql_endpoint() -> Iterator[tuple[str, str]]:
    """Serve an empty dataset on loopback; yields ``(query_url, update_url)``."""
    with SPARQLServer() as server:
        yield server.query_url, server.update_url
