"""Bad input is rejected with InvalidInputError and changes nothing: rows, change log and index size."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from memory import Scope, Triple, VectorMemory
from tests.memory.fakes import HashEmbedder
from tools.errors import InvalidInputError, UnknownNamespaceError

D = 64
GOOD = np.ones((1, D), dtype=np.float32)
NAIVE = datetime(2025, 1, 1)  # naive on purpose


def _bad_calls(item_id: str) -> dict[str, Callable[[VectorMemory], object]]:
    return {
        "empty text": lambda m: m.add(""),
        "blank text": lambda m: m.add(" \n\t "),
        "text too long": lambda m: m.add("x" * 20_001),
        "text not a string": lambda m: m.add(42),
        "lone surrogate": lambda m: m.add("bad \ud800 text"),
        "metadata list value": lambda m: m.add("ok", metadata={"k": [1]}),
        "metadata None value": lambda m: m.add("ok", metadata={"k": None}),
        "metadata NaN": lambda m: m.add("ok", metadata={"k": float("nan")}),
        "metadata inf": lambda m: m.add("ok", metadata={"k": float("inf")}),
        "metadata huge int": lambda m: m.add("ok", metadata={"k": 2**64}),
        "metadata empty key": lambda m: m.add("ok", metadata={"": 1}),
        "metadata long key": lambda m: m.add("ok", metadata={"k" * 65: 1}),
        "metadata non-str key": lambda m: m.add("ok", metadata={1: 1}),
        "metadata not a mapping": lambda m: m.add("ok", metadata=[("k", 1)]),
        "scope not a Scope": lambda m: m.add("ok", scope="alice"),
        "bad scope id": lambda m: m.add("ok", scope=Scope(user_id="a b")),
        "triple not a Triple": lambda m: m.add("ok", triple=("a", "r", "b")),
        "bad triple": lambda m: m.add("ok", triple=Triple("", "r", "b")),
        "empty source": lambda m: m.add("ok", source=""),
        "empty edit id": lambda m: m.add("ok", edit_id=" "),
        "naive valid_from": lambda m: m.add("ok", valid_from=NAIVE),
        "one bad text in a batch": lambda m: m.add_many(["fine", "also fine", ""]),
        "texts is a string": lambda m: m.add_many("abc"),
        "NaN vector": lambda m: m.add_many(["a"], vectors=np.full((1, D), np.nan)),
        "inf vector": lambda m: m.add_many(["a"], vectors=np.full((1, D), np.inf)),
        "zero vector": lambda m: m.add_many(["a", "b"], vectors=np.vstack([GOOD, np.zeros((1, D))])),
        "wrong dimension": lambda m: m.add_many(["a"], vectors=np.ones((1, D + 1))),
        "too few vectors": lambda m: m.add_many(["a", "b"], vectors=GOOD),
        "non-numeric vectors": lambda m: m.add_many(["a"], vectors=np.array([["x"] * D])),
        "scopes too short": lambda m: m.add_many(["a", "b"], scopes=[Scope()]),
        "scope and scopes": lambda m: m.add_many(["a"], scope=Scope(), scopes=[Scope()]),
        "metadatas wrong type": lambda m: m.add_many(["a"], metadatas=[{"k": {"x": 1}}]),
        "batch_size zero": lambda m: m.add_many(["a"], batch_size=0),
        "empty query": lambda m: m.search(""),
        "k zero": lambda m: m.search("q", k=0),
        "k too large": lambda m: m.search("q", k=10_001),
        "k bool": lambda m: m.search("q", k=True),
        "k string": lambda m: m.search("q", k="3"),
        "naive as_of": lambda m: m.search("q", as_of=NAIVE),
        "bad filter": lambda m: m.search("q", filters={"k": [1]}),
        "unknown namespace": lambda m: m.search("q", scope=Scope(user_id="nobody")),
        "query vector NaN": lambda m: m.search_vector(np.full(D, np.nan)),
        "query vector wrong size": lambda m: m.search_vector(np.ones(D - 1)),
        "query vector zero": lambda m: m.search_vector(np.zeros(D)),
        "update with nothing": lambda m: m.update(item_id),
        "update empty text": lambda m: m.update(item_id, ""),
        "update bad metadata": lambda m: m.update(item_id, metadata={"k": object()}),
        "update bad edit id": lambda m: m.update(item_id, "new", edit_id=""),
        "delete bad edit id": lambda m: m.delete(item_id, edit_id=""),
        "rollback empty id": lambda m: m.rollback(""),
        "rollback None": lambda m: m.rollback(None),
        "get non-str id": lambda m: m.get(5),
        "get naive as_of": lambda m: m.get(item_id, as_of=NAIVE),
        "count unknown namespace": lambda m: m.count(Scope(agent_id="ghost")),
        "count scope not a Scope": lambda m: m.count("alice"),
    }


def _state(memory: VectorMemory, db_path: Path) -> tuple[object, ...]:
    conn = sqlite3.connect(db_path)
    try:
        counts = tuple(
            conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("mem_items", "mem_vectors", "mem_meta", "mem_log")
        )
        items = conn.execute("SELECT * FROM mem_items ORDER BY row_id").fetchall()
    finally:
        conn.close()
    return counts, items, memory.index_size


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[VectorMemory, str, Path]:
    root = tmp_path_factory.mktemp("bad-input")
    memory = VectorMemory.open(root, HashEmbedder(D))
    item = memory.add("an existing fact", scope=Scope(user_id="alice"), metadata={"k": 1})
    memory.add("another fact")
    return memory, item.id, root / "state.sqlite"


@pytest.mark.parametrize("case", list(_bad_calls("m-x")))
def test_bad_input_changes_nothing(case: str, seeded: tuple[VectorMemory, str, Path]) -> None:
    memory, item_id, db_path = seeded
    before = _state(memory, db_path)
    with pytest.raises(InvalidInputError) as raised:
        _bad_calls(item_id)[case](memory)
    assert str(raised.value)  # a message that says what was wrong
    assert _state(memory, db_path) == before
    assert memory.search("an existing fact", k=1)[0].item.id == item_id


def test_unknown_namespace_is_its_own_error(seeded: tuple[VectorMemory, str, Path]) -> None:
    memory, _, _ = seeded
    with pytest.raises(UnknownNamespaceError, match="nobody"):
        memory.search("q", scope=Scope(user_id="nobody"))


def test_naive_clock_is_rejected(tmp_path: Path) -> None:
    memory = VectorMemory.open(tmp_path, HashEmbedder(D), clock=lambda: NAIVE)
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        memory.add("x")
    assert memory.count(as_of=datetime.fromisoformat("2030-01-01T00:00:00+00:00"), versions=True) == 0


def test_embedder_output_is_checked(tmp_path: Path) -> None:
    from tools.errors import EmbedderError

    class Broken(HashEmbedder):
        def embed(self, texts: object) -> np.ndarray:
            return np.full((1, D), np.nan, dtype=np.float32)

    memory = VectorMemory.open(tmp_path, Broken(D))
    with pytest.raises(EmbedderError, match="unusable"):
        memory.add("x")
    assert memory.index_size == 0 and memory.count(versions=True) == 0
