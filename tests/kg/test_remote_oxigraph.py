"""SPARQLEndpointStore against a real ``oxigraph serve`` process: the store contract and engine faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kg import SPARQLEndpointStore
from kg._store import TripleStore
from tests.kg.oxigraph_server import OxigraphServer, oxigraph_server
from tests.kg.store_contract import SAMPLE, TripleStoreContract
from tools.errors import StoreError


@pytest.fixture(scope="module")
def server() -> Iterator[OxigraphServer]:
    with oxigraph_server(union_default_graph=False) as running:
        yield running


class TestRemoteOxigraph(TripleStoreContract):
    reads_own_writes_in_transaction = False
    canonical_literals = True

    @pytest.fixture
    def store(self, server: OxigraphServer) -> Iterator[TripleStore]:
        store = SPARQLEndpointStore(server.query_url, server.update_url, timeout_s=30, maintain_default_graph=True)
        store.rdflib_store.update("CLEAR ALL")  # one server for the module: each test starts empty
        store.rdflib_store.commit()
        yield store
        store.close()


def test_server_stopped_mid_run_then_restarted(tmp_path: Path) -> None:
    """While the engine is down, reads and writes fail with StoreError and change nothing; restarted on the same
    port and data directory, it has every acknowledged write and the same store object works again."""
    location = tmp_path / "data"
    with oxigraph_server(location, union_default_graph=False) as first:
        store = SPARQLEndpointStore(first.query_url, first.update_url, timeout_s=5, maintain_default_graph=True)
        store.add(SAMPLE[:4])
        port = int(first.query_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(StoreError):
        store.add(SAMPLE[4:])
    with pytest.raises(StoreError):
        store.query("ASK { ?s ?p ?o }")
    with oxigraph_server(location, union_default_graph=False, port=port):
        assert set(store.quads()) == set(SAMPLE[:4])
        store.add(SAMPLE[4:])
        assert set(store.quads()) == set(SAMPLE)
