"""SPARQLEndpointStore's HTTP behaviour under injected faults (batching, timeouts, refused updates).

The store contract itself runs against a real ``oxigraph serve`` process in ``test_remote_oxigraph.py``; the
project's own endpoint (``sparql_server.py``) is kept for the faults a real engine cannot be made to show.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from rdflib import Literal
from rdflib.plugins.stores.sparqlstore import SPARQLUpdateStore

from kg import SPARQLEndpointStore
from kg._remote_store import _EndpointUpdateStore
from tests.kg.sparql_server import SPARQLServer, sparql_endpoint
from tests.kg.store_contract import G1, P1, SAMPLE, A, B
from tools.errors import QueryError, StoreError


@pytest.fixture
def server() -> Iterator[SPARQLServer]:
    with SPARQLServer() as running:
        yield running


def test_transaction_sends_one_update_request(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    with store.transaction():
        store.add(SAMPLE[:3])
        store.remove(SAMPLE[:1])
        store.add(SAMPLE[3:])
        assert server.update_requests == 0  # buffered until the block exits
    assert server.update_requests == 1
    assert set(store.quads()) == set(SAMPLE[1:])


def test_writes_go_through_rdflib_sparql_update_store(server: SPARQLServer, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    rdf = store.rdflib_store
    assert isinstance(rdf, SPARQLUpdateStore)
    assert (rdf.autocommit, rdf.dirty_reads) == (False, True)
    commits: list[int] = []
    real_commit = rdf.commit

    def counting_commit() -> None:
        commits.append(rdf.pending_updates() if isinstance(rdf, _EndpointUpdateStore) else -1)
        real_commit()

    monkeypatch.setattr(rdf, "commit", counting_commit)
    with store.transaction():
        store.add(SAMPLE[:3])
        store.remove(SAMPLE[:1])
        store.add(SAMPLE[3:])
        assert commits == [] and server.update_requests == 0
    # one SPARQLUpdateStore.commit() of 6 buffered operations (2 + 1 + 3: one per graph per write), one request
    assert commits == [6] and server.update_requests == 1
    assert set(server.dataset.quads()) == set(SAMPLE[1:])


def test_failed_transaction_sends_nothing(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    with pytest.raises(RuntimeError), store.transaction():
        store.add(SAMPLE)
        raise RuntimeError("boom")
    assert server.update_requests == 0
    assert list(server.dataset.quads()) == [] and len(store) == 0


def test_writes_outside_a_transaction_are_sent_at_once(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    store.add(SAMPLE[:2])
    store.remove(SAMPLE[:1])
    assert server.update_requests == 2
    assert list(store.quads()) == [SAMPLE[1]]


def test_removing_a_falsy_literal_removes_only_that_quad(server: SPARQLServer) -> None:
    # rdflib's SPARQLUpdateStore.remove would turn Literal("") and Literal(0) into the wildcard ?O
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    falsy = [(A, P1, Literal(""), G1), (A, P1, Literal(0), G1), (A, P1, Literal(False), G1)]
    store.add([*falsy, (A, P1, B, G1)])
    store.remove(falsy)
    assert list(store.quads()) == [(A, P1, B, G1)]


MULTI_LINE = ['x\n\\"', 'x\n"""""} } ; DROP ALL ; #', 'a\n;\nINSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> "c" } }']


@pytest.mark.parametrize("text", MULTI_LINE)
def test_multi_line_literals_round_trip(server: SPARQLServer, text: str) -> None:
    # Literal.n3() triple-quotes these and gets the escaping wrong; encode_term writes them on one line
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    quad = (A, P1, Literal(text), G1)
    store.add([quad])
    assert list(server.dataset.quads()) == [quad] and list(store.quads(obj=Literal(text))) == [quad]
    store.remove([quad])
    assert len(store) == 0


def test_failed_commit_is_not_resent(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url.replace("/update", "/nowhere"))
    with pytest.raises(StoreError, match="HTTP 404"):
        store.add([(A, P1, B, G1)])
    store.rdflib_store.update_endpoint = server.update_url
    store.add([(B, P1, A, G1)])
    assert server.update_requests == 1 and list(store.quads()) == [(B, P1, A, G1)]


def test_endpoint_rejecting_a_query_raises_query_error(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    with pytest.raises(QueryError, match="HTTP 400"):  # sent as is: the rdflib store does not parse first
        store.rdflib_store.query("SELECT WHERE {")
    elsewhere = SPARQLEndpointStore(server.query_url.replace("/query", "/nowhere"), server.update_url)
    with pytest.raises(StoreError, match="HTTP 404"):  # the endpoint is wrong, not the query
        elsewhere.query("ASK { ?s ?p ?o }")


def test_unreachable_endpoint_raises_store_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = SPARQLEndpointStore(f"http://127.0.0.1:{port}/query", f"http://127.0.0.1:{port}/update", timeout_s=2)
    with pytest.raises(StoreError, match="unreachable"):
        store.add([(A, P1, B, G1)])
    with pytest.raises(StoreError, match="unreachable"):
        store.query("ASK { ?s ?p ?o }")
    with pytest.raises(StoreError):
        len(store)


def test_slow_endpoint_times_out_with_store_error(server: SPARQLServer) -> None:
    server.delay_s = 2.0
    store = SPARQLEndpointStore(server.query_url, server.update_url, timeout_s=0.3)
    start = time.perf_counter()
    with pytest.raises(StoreError, match="did not answer"):
        store.query("ASK { ?s ?p ?o }")
    assert time.perf_counter() - start < 1.5


def test_endpoint_rejecting_an_update_raises_store_error(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url.replace("/update", "/nowhere"))
    with pytest.raises(StoreError, match="HTTP 404"):
        store.add([(A, P1, B, G1)])


def test_malformed_query_never_reaches_the_endpoint(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore("http://127.0.0.1:9/query", "http://127.0.0.1:9/update", timeout_s=1)
    with pytest.raises(QueryError):
        store.query("SELECT WHERE {")


def test_injection_payload_is_stored_as_one_literal(server: SPARQLServer) -> None:
    store = SPARQLEndpointStore(server.query_url, server.update_url)
    payload = Literal('"> } ; DROP ALL ; INSERT DATA { <urn:a> <urn:b> <urn:c> } #')
    store.add(SAMPLE)
    store.add([(A, P1, payload, G1)])
    assert len(list(server.dataset.quads())) == len(SAMPLE) + 1
    assert list(store.quads(obj=payload)) == [(A, P1, payload, G1)]


def test_protocol_variants_of_the_test_server() -> None:
    # The store posts forms; other clients use GET and direct bodies: the test endpoint serves all of them.
    import urllib.parse
    import urllib.request

    with sparql_endpoint() as (query_url, update_url):
        body = b'INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> "x" } }'
        request = urllib.request.Request(update_url, data=body, headers={"Content-Type": "application/sparql-update"})
        urllib.request.urlopen(request, timeout=5).close()
        get = f"{query_url}?{urllib.parse.urlencode({'query': 'SELECT ?o WHERE { ?s ?p ?o }'})}"
        xml = urllib.request.Request(get, headers={"Accept": "application/sparql-results+xml"})
        with urllib.request.urlopen(xml, timeout=5) as r:
            assert r.headers["Content-Type"].startswith("application/sparql-results+xml")
            assert b"<literal>x</literal>" in r.read()
        post = urllib.request.Request(
            query_url, data=b"ASK { <urn:a> ?p ?o }", headers={"Content-Type": "application/sparql-query"}
        )
        with urllib.request.urlopen(post, timeout=5) as r:
            assert json.loads(r.read())["boolean"] is True
