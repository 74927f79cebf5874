"""A real SPARQL 1.1 Protocol endpoint on loopback for tests: rdflib's engine behind ``ThreadingHTTPServer``.

Serves one in-memory rdflib ``Dataset`` (default graph = union of the named graphs, like the local stores):

* query:  ``GET /query?query=...``, ``POST /query`` with ``application/sparql-query`` or a form ``query=``;
  results as ``application/sparql-results+json`` (default) or ``+xml`` by ``Accept``.
* update: ``POST /update`` with ``application/sparql-update`` or a form ``update=``; a request is parsed as a
  whole before any operation runs, so a malformed request changes nothing.

Malformed requests get HTTP 400. :class:`SPARQLServer` counts update requests and can delay answers, so
tests can check batching and timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from rdflib import Dataset
from rdflib.plugins.sparql import prepareQuery, prepareUpdate
from rdflib.term import IdentifiedNode, Node

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
                for verb, quads in data_operations:
                    for s, p, o, g in quads:
                        graph = self.dataset.graph(g)
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


def _parse_data_operations(text: str) -> list[tuple[str, _Quads]] | None:
    """Fast path for ``INSERT DATA`` / ``DELETE DATA`` requests laid out one ``GRAPH <g> {...}`` per line.

    rdflib's SPARQL parser needs ~1.4 ms per triple (14 s for 10k); the TriG parser needs ~0.05 ms. The
    lines between ``VERB DATA {`` and ``}`` are parsed as one TriG document; a layout this does not fit
    (or TriG that does not parse, e.g. a literal spanning lines) returns ``None`` and the caller uses the
    full SPARQL parser, so the fast path never changes what a request means.
    """
    operations: list[tuple[str, _Quads]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        header = lines[i].strip()
        if header not in ("INSERT DATA {", "DELETE DATA {"):
            return None
        end = i + 1
        while end < len(lines) and lines[end].strip() not in ("}", "} ;", "};"):
            end += 1
        if end == len(lines):
            return None
        parsed = Dataset()
        try:
            parsed.parse(data="\n".join(lines[i + 1 : end]), format="trig")
        except Exception:  # any TriG error: let the full SPARQL parser decide
            return None
        quads = [(s, p, o, g) for s, p, o, g in parsed.quads((None, None, None, None)) if g is not None]
        if len(quads) != len(parsed):  # triples outside GRAPH blocks: not this layout
            return None
        operations.append((header.split()[0], quads))
        i = end + 1
    return operations or None


@contextmanager
def sparql_endpoint() -> Iterator[tuple[str, str]]:
    """Serve an empty dataset on loopback; yields ``(query_url, update_url)``."""
    with SPARQLServer() as server:
        yield server.query_url, server.update_url
