"""SPARQLEndpointStore against a real ``oxigraph serve`` process: the store contract and engine faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kg import SPARQLEndpointStore
from kg._store import TripleStore
from tests.kg.oxigraph_server import OxigraphServer, oxigraph_server
from tests.kg.store_contract import TripleStoreContract


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
