"""OxigraphTripleStore (embedded pyoxigraph): the store contract on disk and in memory, plus its own behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import XSD, Literal

from kg._oxigraph_store import OxigraphTripleStore
from kg._store import TripleStore
from tests.kg.store_contract import G1, NAME, SAMPLE, A, TripleStoreContract
from tools.errors import StoreError


class TestOxigraphOnDisk(TripleStoreContract):
    reads_own_writes_in_transaction = False  # buffered, sent as one update when the outermost block exits
    canonical_literals = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TripleStore]:
        store = OxigraphTripleStore(tmp_path / "oxigraph")
        yield store
        store.close()


def test_data_survives_reopening(tmp_path: Path) -> None:
    store = OxigraphTripleStore(tmp_path / "db")
    store.add(SAMPLE)
    store.close()
    del store
    again = OxigraphTripleStore(tmp_path / "db")
    assert set(again.quads()) == set(SAMPLE)


def test_literals_come_back_canonical_and_match_either_form() -> None:
    store = OxigraphTripleStore()
    store.add([(A, NAME, Literal("007", datatype=XSD.integer), G1), (A, NAME, Literal("x", datatype=XSD.string), G1)])
    assert set(store.quads()) == {(A, NAME, Literal("7", datatype=XSD.integer), G1), (A, NAME, Literal("x"), G1)}
    assert list(store.quads(obj=Literal("007", datatype=XSD.integer))) == [
        (A, NAME, Literal("7", datatype=XSD.integer), G1)
    ]
    assert list(store.quads(obj=Literal("x"))) == [(A, NAME, Literal("x"), G1)]


def test_a_directory_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "file"
    bad.write_text("not a database")
    with pytest.raises(StoreError):
        OxigraphTripleStore(bad)


def test_bulk_load_counts_and_stores() -> None:
    store = OxigraphTripleStore()
    assert store.bulk_load(SAMPLE, batch=3) == len(SAMPLE)
    assert set(store.quads()) == set(SAMPLE)
