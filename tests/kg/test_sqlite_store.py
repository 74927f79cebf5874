"""SQLiteTripleStore: the TripleStore contract plus persistence, shared transactions, processes and speed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rdflib import Literal, URIRef

from kg import SQLiteTripleStore
from kg._store import TripleStore
from tests.conftest import REPO
from tests.kg.store_contract import EX, G1, P1, SAMPLE, TripleStoreContract
from tools.base import Database
from tools.errors import StoreError


class TestSQLiteStore(TripleStoreContract):
    large_batch_seconds = 5.0

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[TripleStore]:
        store = SQLiteTripleStore.open(tmp_path / "state.sqlite")
        yield store
        store.close()


def _entity(name: str) -> URIRef:
    return URIRef(f"{EX}entity/{name}")


def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = SQLiteTripleStore.open(path)
    store.add(SAMPLE)
    store.close()
    reopened = SQLiteTripleStore.open(path)
    assert set(reopened.quads()) == set(SAMPLE)
    assert reopened.query("SELECT ?o WHERE { ?s ?p ?o }", {"s": _entity("A"), "p": P1}) == [(_entity("B"),)]
    reopened.close()


def test_outer_database_transaction_rolls_back_kg_and_other_tables_together(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "state.sqlite")
    store = SQLiteTripleStore(db)
    with db.transaction() as conn:
        conn.execute("CREATE TABLE mem_items (id TEXT)")
    with pytest.raises(RuntimeError), db.transaction() as conn:
        conn.execute("INSERT INTO mem_items VALUES ('m-1')")
        store.add([(_entity("a"), P1, _entity("b"), G1)])
        raise RuntimeError("the memory write failed after the KG write")
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM mem_items").fetchone()[0] == 0
    assert len(store) == 0
    with db.transaction() as conn:
        conn.execute("INSERT INTO mem_items VALUES ('m-1')")
        store.add([(_entity("a"), P1, _entity("b"), G1)])
    assert len(store) == 1
    db.close()


def test_term_ids_of_rolled_back_writes_are_never_reused_wrongly(tmp_path: Path) -> None:
    # A term inserted by a transaction that rolls back frees its id; SQLite hands the same id to the next
    # new term. A cache that remembered the first term's id would now resolve it to the second term.
    db = Database.open(tmp_path / "state.sqlite")
    store = SQLiteTripleStore(db)
    ghost, real = _entity("ghost"), _entity("real")
    with pytest.raises(RuntimeError), db.transaction():
        store.add([(ghost, P1, ghost, G1)])
        raise RuntimeError("rolled back")
    store.add([(real, P1, real, G1)])
    assert list(store.quads(subject=ghost)) == []
    assert list(store.quads(obj=ghost)) == []
    assert store.query("ASK { ?s ?p ?o }", {"s": ghost}) == [(Literal(False),)]
    assert list(store.quads(subject=real)) == [(real, P1, real, G1)]
    db.close()


def test_two_handles_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    first, second = SQLiteTripleStore.open(path), SQLiteTripleStore.open(path)
    first.add([(_entity("a"), P1, _entity("b"), G1)])
    assert list(second.quads(subject=_entity("a"))) == [(_entity("a"), P1, _entity("b"), G1)]
    second.remove([(_entity("a"), P1, _entity("b"), G1)])
    second.add([(_entity("c"), P1, _entity("d"), G1)])
    assert list(first.quads(subject=_entity("a"))) == []
    assert first.query("SELECT ?s WHERE { ?s ?p ?o }") == [(_entity("c"),)]
    first.close()
    second.close()


_WRITER = """
import sys
from rdflib import Literal, URIRef
from kg import SQLiteTripleStore
path, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SQLiteTripleStore.open(path)
shared = URIRef("https://example.org/entity/shared")
for i in range(n):
    with store.transaction():
        store.add([(URIRef(f"https://example.org/entity/{worker}-{i}"), URIRef("https://example.org/rel/p"),
                    Literal(i), URIRef(f"https://example.org/graph/{worker}-{i}")),
                   (shared, URIRef("https://example.org/rel/term"), Literal(f"t{i}"), URIRef(f"https://example.org/graph/{worker}"))])
store.close()
"""


def test_two_processes_write_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    SQLiteTripleStore.open(path).close()
    n = 150
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), worker, str(n)], cwd=REPO, env=env)
        for worker in ("w1", "w2")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    store = SQLiteTripleStore.open(path)
    assert len(store) == 4 * n
    for worker in ("w1", "w2"):
        for i in (0, n // 2, n - 1):
            assert len(list(store.quads(subject=_entity(f"{worker}-{i}")))) == 1
    # both processes raced to create the same literal terms: each term row exists once and resolves
    shared_terms = store.query("SELECT (COUNT(DISTINCT ?o) AS ?n) WHERE { ?s ?p ?o }", {"s": _entity("shared")})
    assert shared_terms == [(Literal(n),)]
    store.close()


def test_sqlite_failures_become_store_errors(tmp_path: Path) -> None:
    store = SQLiteTripleStore.open(tmp_path / "state.sqlite")
    store.close()
    with pytest.raises(StoreError):
        store.add([(_entity("a"), P1, _entity("b"), G1)])
    with pytest.raises(StoreError):
        list(store.quads())
    with pytest.raises(StoreError):
        store.query("SELECT * WHERE { ?s ?p ?o }")


def test_caller_owned_database_stays_open(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "state.sqlite")
    store = SQLiteTripleStore(db)
    store.close()
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM kg_quads").fetchone()[0] == 0
    db.close()


def test_speed_bulk_add_and_indexed_lookup(tmp_path: Path) -> None:
    store = SQLiteTripleStore.open(tmp_path / "state.sqlite")
    n = 25_000
    quads = [
        (_entity(f"e{i}"), URIRef(f"{EX}rel/r{i % 50}"), _entity(f"e{(i * 7) % 5000}"), URIRef(f"{EX}graph/a-{i:x}"))
        for i in range(n)
    ]
    start = time.perf_counter()
    with store.transaction():
        store.add(quads)
    add_s = time.perf_counter() - start
    s, p, o, g = quads[12_345]
    assert list(store.quads(s, p)) == [(s, p, o, g)]
    start = time.perf_counter()
    for _ in range(200):
        found = list(store.quads(s, p))
    lookup_ms = (time.perf_counter() - start) / 200 * 1000
    assert found == [(s, p, o, g)]
    sparql = "SELECT ?g ?o WHERE { GRAPH ?g { ?s ?p ?o } }"
    store.query(sparql, {"s": quads[0][0], "p": quads[0][1]})  # parse once
    start = time.perf_counter()
    rows = store.query(sparql, {"s": s, "p": p})
    graph_var_ms = (time.perf_counter() - start) * 1000
    assert rows == [(g, o)]
    store.close()
    assert add_s < 5.0, f"25k quads took {add_s:.2f} s"
    assert lookup_ms < 1.0, f"quads(s, p) took {lookup_ms:.3f} ms"
    assert graph_var_ms < 50, f"GRAPH ?g over 25k graphs took {graph_var_ms:.0f} ms"
