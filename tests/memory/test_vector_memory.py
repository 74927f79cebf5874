"""VectorMemory with a fake embedder: items, versions, time travel, scopes, filters, rollback, transactions."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

import memory._search as search_module
from memory import Database, IndexConfig, MemoryItem, Scope, Triple, VectorMemory
from tests.memory.fakes import T0, HashEmbedder, ManualClock
from tools.errors import ConfigError, InvalidInputError, NotFoundError, StoreError, UnknownNamespaceError

ALICE = Scope(user_id="alice")
BOB = Scope(user_id="bob")


def _texts(memory: VectorMemory, query: str, **kwargs: object) -> list[str]:
    return [hit.item.text for hit in memory.search(query, **kwargs)]  # type: ignore[arg-type]


def _tables(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every mem_ row but the append-only change log (a second connection: sees committed data only)."""
    conn = sqlite3.connect(db_path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("mem_items", "mem_vectors", "mem_meta")
        }
    finally:
        conn.close()


# -- add / get / search ------------------------------------------------------------------------------------


def test_add_returns_the_stored_item(memory: VectorMemory, clock: ManualClock) -> None:
    item = memory.add(
        "Jane Roe is the CEO of Acme.",
        scope=ALICE,
        triple=Triple("Acme", "company_ceo", "Jane Roe"),
        source="user:alice",
        metadata={"topic": "ceo", "n": 3, "w": 0.5, "ok": True},
        edit_id="e-1",
    )
    assert re.fullmatch(r"m-[0-9a-f]{16}", item.id)
    assert (item.version, item.status, item.invalid_at) == (1, "active", None)
    assert item.created_at == item.valid_from == clock.now
    assert memory.get(item.id) == item
    assert hash(item) == hash(memory.get(item.id))  # hashable despite the metadata dict


def test_search_ranks_by_cosine_similarity(memory: VectorMemory) -> None:
    memory.add_many(["the cat sat on the mat", "dogs bark at night", "a cat and a dog"])
    hits = memory.search("cat mat", k=3)
    assert hits[0].item.text == "the cat sat on the mat"
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0001 <= s <= 1.0001 for s in scores)
    assert memory.search("the cat sat on the mat", k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(memory.search("cat", k=2)) == 2


def test_add_many_per_item_fields_batches_and_progress(memory: VectorMemory, embedder: HashEmbedder) -> None:
    seen: list[tuple[int, int]] = []
    items = memory.add_many(
        [f"note number {i}" for i in range(5)],
        scopes=[ALICE, BOB, ALICE, BOB, ALICE],
        triples=[None, Triple("a", "r", "b"), None, None, None],
        sources=["s0", None, "s2", None, None],
        metadatas=[{"i": i} for i in range(5)],
        batch_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert [i.text for i in items] == [f"note number {i}" for i in range(5)]
    assert [i.scope for i in items] == [ALICE, BOB, ALICE, BOB, ALICE]
    assert items[1].triple == Triple("a", "r", "b") and items[0].source == "s0"
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert embedder.calls == 3  # one embedder call per batch
    assert memory.count(ALICE) == 3
    assert [memory.get(i.id) for i in items] == items


def test_precomputed_vectors_skip_the_embedder(memory: VectorMemory, embedder: HashEmbedder) -> None:
    vectors = embedder.embed(["alpha beta", "gamma delta"]) * 3.0  # not unit: normalised on the way in
    embedder.calls = 0
    memory.add_many(["first", "second"], vectors=vectors)
    assert embedder.calls == 0
    hits = memory.search_vector(vectors[1], k=1)
    assert hits[0].item.text == "second"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


# -- versions and time travel ------------------------------------------------------------------------------


def test_update_writes_a_new_version_and_keeps_the_old(memory: VectorMemory, clock: ManualClock) -> None:
    item = memory.add("The CEO of Acme is John Doe.", metadata={"topic": "ceo"})
    t_update = clock.advance()
    new = memory.update(item.id, "The CEO of Acme is Jane Roe.", edit_id="e-2")
    assert (new.id, new.version, new.status, new.valid_from) == (item.id, 2, "active", t_update)
    assert new.metadata == {"topic": "ceo"}  # kept
    old, current = memory.history(item.id)
    assert (old.status, old.invalid_at) == ("superseded", t_update)
    assert current == new
    assert memory.get(item.id) == new
    assert memory.get(item.id, as_of=t_update - timedelta(seconds=1)).text == "The CEO of Acme is John Doe."
    assert _texts(memory, "CEO of Acme", k=5) == ["The CEO of Acme is Jane Roe."]  # one version per item
    past = _texts(memory, "CEO of Acme", k=5, as_of=t_update - timedelta(seconds=1))
    assert past == ["The CEO of Acme is John Doe."]
    assert memory.count() == 1 and memory.count(versions=True) == 2 and memory.index_size == 2


def test_update_without_new_text_reuses_the_vector(memory: VectorMemory, embedder: HashEmbedder) -> None:
    item = memory.add("Paris is in France.", triple=Triple("Paris", "located_in", "France"))
    calls = embedder.calls
    new = memory.update(item.id, metadata={"checked": True}, triple=None, source="doc:1")
    assert embedder.calls == calls
    assert (new.text, new.triple, new.metadata, new.source) == ("Paris is in France.", None, {"checked": True}, "doc:1")
    assert memory.search("Paris France", k=1)[0].item == new


def test_delete_is_soft(memory: VectorMemory, clock: ManualClock) -> None:
    item = memory.add("temporary note")
    t_delete = clock.advance()
    deleted = memory.delete(item.id, edit_id="e-del")
    assert (deleted.status, deleted.invalid_at, deleted.version) == ("deleted", t_delete, 1)
    with pytest.raises(NotFoundError, match="no version valid"):
        memory.get(item.id)
    assert memory.search("temporary note", k=5) == []
    assert memory.history(item.id) == [deleted]
    assert memory.get(item.id, as_of=t_delete - timedelta(seconds=1)).status == "deleted"  # the stored row
    assert _texts(memory, "temporary note", as_of=t_delete - timedelta(seconds=1)) == ["temporary note"]
    with pytest.raises(NotFoundError, match="deleted"):
        memory.update(item.id, "again")
    with pytest.raises(NotFoundError, match="deleted"):
        memory.delete(item.id)


def test_time_travel_over_several_versions(memory: VectorMemory, clock: ManualClock) -> None:
    item = memory.add("version one of the fact")
    times = [clock.now]
    for text in ("version two of the fact", "version three of the fact"):
        times.append(clock.advance())
        memory.update(item.id, text)
    times.append(clock.advance())
    memory.delete(item.id)
    assert memory.search("fact", as_of=times[0] - timedelta(microseconds=1)) == []
    for i, t in enumerate(times[:3]):
        assert memory.get(item.id, as_of=t).version == i + 1
        assert memory.get(item.id, as_of=t + timedelta(seconds=1)).version == i + 1
        assert _texts(memory, "fact", as_of=t + timedelta(seconds=1)) == [memory.history(item.id)[i].text]
    assert memory.search("fact", as_of=times[3]) == []
    assert [v.status for v in memory.history(item.id)] == ["superseded", "superseded", "deleted"]


def test_valid_from_backdates_a_fact(memory: VectorMemory) -> None:
    item = memory.add("founded in 1990", valid_from=T0 - timedelta(days=365))
    assert memory.get(item.id, as_of=T0 - timedelta(days=1)) == item
    assert memory.count(as_of=T0 - timedelta(days=400)) == 0


def test_unknown_items(memory: VectorMemory) -> None:
    for call in (memory.get, memory.history, memory.delete, lambda i: memory.update(i, "x")):
        with pytest.raises(NotFoundError, match="no memory item"):
            call("m-0000000000000000")


# -- scopes and metadata filters ---------------------------------------------------------------------------


def test_scopes_partition_search_and_count(memory: VectorMemory) -> None:
    memory.add("alice likes green tea", scope=Scope(user_id="alice", agent_id="a1"))
    memory.add("alice likes black tea", scope=Scope(user_id="alice", agent_id="a2"))
    memory.add("bob likes green tea", scope=BOB)
    memory.add("unscoped green tea fact")
    assert sorted(_texts(memory, "green tea", scope=ALICE)) == ["alice likes black tea", "alice likes green tea"]
    assert _texts(memory, "green tea", scope=Scope(user_id="alice", agent_id="a2")) == ["alice likes black tea"]
    assert _texts(memory, "green tea", scope=Scope(agent_id="a1")) == ["alice likes green tea"]
    assert len(memory.search("green tea", scope=Scope())) == 4  # the empty scope filters nothing
    assert (memory.count(ALICE), memory.count(BOB), memory.count()) == (2, 1, 4)
    assert memory.scopes() == [Scope("alice", "a1"), Scope("alice", "a2"), BOB]
    for scope in (Scope(user_id="carol"), Scope(user_id="bob", agent_id="a1")):
        with pytest.raises(UnknownNamespaceError):
            memory.search("tea", scope=scope)
        with pytest.raises(UnknownNamespaceError):
            memory.count(scope)


def test_metadata_filters_match_type_and_value(memory: VectorMemory) -> None:
    memory.add_many(
        ["tea one", "tea two", "tea three", "tea four"],
        metadatas=[{"n": 1, "kind": "a"}, {"n": 1.0, "kind": "b"}, {"n": True, "kind": "a"}, {"kind": "a"}],
    )
    assert sorted(_texts(memory, "tea", filters={"n": 1})) == ["tea one", "tea two"]  # 1 == 1.0, never True
    assert _texts(memory, "tea", filters={"n": True}) == ["tea three"]
    assert _texts(memory, "tea", filters={"n": "1"}) == []
    assert sorted(_texts(memory, "tea", filters={"kind": "a", "n": 1})) == ["tea one"]
    assert len(memory.search("tea", filters={})) == 4


@pytest.fixture
def big(tmp_path: Path, clock: ManualClock) -> VectorMemory:
    """1,200 items over an HNSW index (flat_max lowered): 1,000 about tea, 200 rare ones far from it."""
    embedder = HashEmbedder(dimension=32)
    memory = VectorMemory.open(tmp_path / "big", embedder, IndexConfig(flat_max=300), clock=clock)
    memory.add_many(
        [f"tea cup number {i}" for i in range(1_000)] + [f"stone rock mineral {i}" for i in range(200)],
        metadatas=[{"group": "tea"}] * 1_000 + [{"group": "rock", "rare": i < 3} for i in range(200)],
        scopes=[Scope(user_id="many")] * 1_197 + [Scope(user_id="few")] * 3,
        batch_size=400,
    )
    assert memory.index_kind == "hnsw"
    return memory


def test_very_selective_filters_still_fill_k(big: VectorMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    # The nearest hundreds of neighbours of a tea query are tea items: the filter must look further.
    assert sorted(_texts(big, "tea cup", k=10, filters={"rare": True})) == [f"stone rock mineral {i}" for i in range(3)]
    assert len(big.search("tea cup", k=10, scope=Scope(user_id="few"))) == 3
    # Same answers when the exact shortcut is off and the ANN over-fetch has to give up and fall back.
    monkeypatch.setattr(search_module, "EXACT_MAX", 0)
    monkeypatch.setattr(search_module, "FETCH_CAP", 64)
    assert sorted(_texts(big, "tea cup", k=10, filters={"rare": True})) == [f"stone rock mineral {i}" for i in range(3)]
    rocks = big.search("tea cup", k=50, filters={"group": "rock"})
    assert len(rocks) == 50 and all(h.item.metadata["group"] == "rock" for h in rocks)


def test_filtered_ann_results_match_exact_search(big: VectorMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    exact = big.search("stone rock mineral 7", k=10, filters={"group": "rock"})  # 200 candidates: exact
    monkeypatch.setattr(search_module, "EXACT_MAX", 0)
    ann = big.search("stone rock mineral 7", k=10, filters={"group": "rock"})
    assert len({h.item.id for h in ann} & {h.item.id for h in exact}) >= 9
    assert ann[0].item.text == exact[0].item.text == "stone rock mineral 7"


def test_k_beyond_the_approximate_index_and_time_before_everything(big: VectorMemory) -> None:
    assert len(big.search("tea cup", k=1_500)) == 1_200  # HNSW cannot promise all: exact fallback
    assert big.search("tea cup", as_of=T0 - timedelta(days=1)) == []


def test_superseded_versions_do_not_crowd_out_results(big: VectorMemory) -> None:
    target = big.search("tea cup number 5", k=1)[0].item
    for i in range(40):  # 40 stale versions of one item sit right next to the query
        big.update(target.id, f"tea cup number 5 revision {i}")
    hits = big.search("tea cup number 5", k=10)
    assert len(hits) == 10 and len({h.item.id for h in hits}) == 10
    assert all(h.item.status == "active" for h in hits)


# -- rollback ----------------------------------------------------------------------------------------------


def test_rollback_restores_the_exact_prior_state(memory: VectorMemory, tmp_path: Path) -> None:
    db_path = tmp_path / "mem" / "state.sqlite"
    kept = memory.add("the sky is blue", metadata={"k": "v"})
    doomed = memory.add("the sea is green")
    before = _tables(db_path)
    hits_before = memory.search("the sky", k=5)
    memory.update(kept.id, "the sky is red", metadata={"k": "w"}, edit_id="e-1")
    memory.delete(doomed.id, edit_id="e-1")
    memory.add("a brand new fact", edit_id="e-1", metadata={"x": 1})
    memory.add_many(["more", "facts"], edit_id="e-1")
    assert memory.rollback("e-1") == 4 + 2  # 4 new versions removed; v1 and the deleted item restored
    assert _tables(db_path) == before
    assert memory.search("the sky", k=5) == hits_before
    assert memory.index_size == memory.count(versions=True) == 2
    with pytest.raises(NotFoundError):
        memory.rollback("e-1")


def test_rollback_refuses_when_a_later_edit_depends_on_it(memory: VectorMemory, tmp_path: Path) -> None:
    item = memory.add("step zero")
    memory.update(item.id, "step one", edit_id="e-1")
    memory.update(item.id, "step two", edit_id="e-2")
    before = _tables(tmp_path / "mem" / "state.sqlite")
    with pytest.raises(InvalidInputError, match="roll those back first"):
        memory.rollback("e-1")
    assert _tables(tmp_path / "mem" / "state.sqlite") == before
    assert memory.rollback("e-2") == 2
    assert memory.rollback("e-1") == 2
    assert memory.get(item.id).text == "step zero" and memory.get(item.id).status == "active"


def test_rollback_on_hnsw_hides_removed_versions(big: VectorMemory) -> None:
    big.add_many([f"volcano lava {i}" for i in range(20)], edit_id="e-lava")
    assert big.search("volcano lava", k=1)[0].item.text.startswith("volcano")
    assert big.rollback("e-lava") == 20
    assert not any(h.item.text.startswith("volcano") for h in big.search("volcano lava", k=10))
    assert big.index_size == big.count(versions=True) == 1_200


# -- transactions shared with the knowledge graph ----------------------------------------------------------


def test_writes_inside_an_outer_transaction(tmp_path: Path, embedder: HashEmbedder) -> None:
    db = Database.open(tmp_path / "state.sqlite")
    memory = VectorMemory(db, embedder, tmp_path / "index")
    memory.add("kept before")
    with pytest.raises(RuntimeError), db.transaction():
        memory.add_many(["rolled back one", "rolled back two"])
        raise RuntimeError("the KG write failed")
    assert memory.count(versions=True) == 1 and memory.index_size == 1
    fresh = memory.add("written after")  # reuses the rolled-back row ids: must not meet stale vectors
    assert memory.search("written after", k=1)[0].item == fresh
    assert memory.search("rolled back one", k=2)[0].item.text != "rolled back one"
    with db.transaction():
        inside = memory.add("committed with the KG")
    assert memory.search("committed with the KG", k=1)[0].item == inside
    assert memory.index_size == memory.count(versions=True) == 3
    memory.close()
    db.close()


def test_close_and_reopen_with_another_dimension(tmp_path: Path, embedder: HashEmbedder) -> None:
    memory = VectorMemory.open(tmp_path, embedder)
    memory.add("x")
    memory.close()
    memory.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        memory.search("x")
    with pytest.raises(ConfigError, match="64-dimensional"):
        VectorMemory.open(tmp_path, HashEmbedder(dimension=16))


def test_records_helpers() -> None:
    item = MemoryItem("m-1", 1, "t", Scope(), None, None, None, T0, T0, T0 + timedelta(1), "superseded", {})
    assert item.is_valid_at(T0) and not item.is_valid_at(T0 + timedelta(1))
    assert not item.is_valid_at(T0 - timedelta(1))


def test_vectors_are_stored_as_float32_rows(memory: VectorMemory, tmp_path: Path, embedder: HashEmbedder) -> None:
    item = memory.add("stored vector check")
    conn = sqlite3.connect(tmp_path / "mem" / "state.sqlite")
    blob = conn.execute(
        "SELECT v.vector FROM mem_vectors v JOIN mem_items m USING (row_id) WHERE m.item_id = ?", (item.id,)
    ).fetchone()[0]
    conn.close()
    assert np.allclose(np.frombuffer(blob, dtype=np.float32), embedder.embed(["stored vector check"])[0])
