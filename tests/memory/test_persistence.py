"""Index files: reopen loads them; missing, stale or corrupt ones are caught up or rebuilt, never re-embedded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from memory import IndexConfig, Scope, VectorMemory
from tests.memory.fakes import HashEmbedder

TEXTS = [f"fact number {i} about topic {i % 7}" for i in range(60)]


def _fill(root: Path, config: IndexConfig | None = None) -> list[str]:
    with VectorMemory.open(root, HashEmbedder(), config) as memory:
        items = memory.add_many(TEXTS, scope=Scope(user_id="u"), batch_size=25)
        memory.update(items[0].id, "fact number zero, revised")
        memory.delete(items[1].id)
    return [i.id for i in items]


def _reopen(root: Path, config: IndexConfig | None = None) -> tuple[VectorMemory, HashEmbedder]:
    embedder = HashEmbedder()
    return VectorMemory.open(root, embedder, config), embedder


def _assert_complete(memory: VectorMemory, embedder: HashEmbedder, ids: list[str]) -> None:
    assert embedder.calls == 0  # nothing was re-embedded to get here
    assert memory.index_size == memory.count(versions=True) == 61
    assert memory.count() == 59
    assert memory.get(ids[0]).text == "fact number zero, revised"
    for i in (2, 30, 59):
        assert memory.search(TEXTS[i], k=1)[0].item.id == ids[i]


def _rebuilt(caplog: pytest.LogCaptureFixture) -> bool:
    return any("rebuilt the" in r.getMessage() for r in caplog.records)


def test_reopen_loads_the_saved_index(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = _fill(tmp_path)
    sidecar = json.loads((tmp_path / "index" / "index.json").read_text())
    assert (sidecar["count"], sidecar["kind"], sidecar["dimension"]) == (61, "flat", 64)
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, embedder = _reopen(tmp_path)
    assert not _rebuilt(caplog)
    _assert_complete(memory, embedder, ids)
    memory.close()


def test_missing_index_is_rebuilt_from_stored_vectors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = _fill(tmp_path)
    shutil.rmtree(tmp_path / "index")
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, embedder = _reopen(tmp_path)
    assert _rebuilt(caplog)
    _assert_complete(memory, embedder, ids)
    memory.close()
    assert (tmp_path / "index" / "index.json").is_file()  # saved right after the rebuild


def test_stale_index_catches_up_from_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with VectorMemory.open(tmp_path, HashEmbedder()) as memory:
        first = memory.add_many(TEXTS[:30])
    shutil.copytree(tmp_path / "index", tmp_path / "old-index")
    with VectorMemory.open(tmp_path, HashEmbedder()) as memory:
        rest = memory.add_many(TEXTS[30:])
        memory.update(first[0].id, "fact number zero, revised")
        memory.delete(first[1].id)
    shutil.rmtree(tmp_path / "index")
    shutil.move(tmp_path / "old-index", tmp_path / "index")  # the index as it was after 30 items
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, embedder = _reopen(tmp_path)
    assert not _rebuilt(caplog)
    _assert_complete(memory, embedder, [i.id for i in first + rest])
    memory.close()


@pytest.mark.parametrize("damage", ["index bytes", "truncated index", "sidecar garbage", "sidecar checksum"])
def test_corrupt_index_is_logged_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    ids = _fill(tmp_path)
    sidecar_path = tmp_path / "index" / "index.json"
    sidecar = json.loads(sidecar_path.read_text())
    index_path = tmp_path / "index" / sidecar["file"]
    if damage == "index bytes":
        data = bytearray(index_path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        index_path.write_bytes(bytes(data))
    elif damage == "truncated index":
        index_path.write_bytes(index_path.read_bytes()[:100])
    elif damage == "sidecar garbage":
        sidecar_path.write_text("{not json")
    else:
        sidecar_path.write_text(json.dumps({**sidecar, "sha256": "0" * 64}))
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, embedder = _reopen(tmp_path)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "unusable" in errors[0].getMessage()
    assert _rebuilt(caplog)
    _assert_complete(memory, embedder, ids)
    memory.close()


def test_index_of_another_database_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = _fill(tmp_path / "a")
    _fill(tmp_path / "b")
    shutil.rmtree(tmp_path / "a" / "index")
    shutil.copytree(tmp_path / "b" / "index", tmp_path / "a" / "index")
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, embedder = _reopen(tmp_path / "a")
    assert any("another database" in r.getMessage() for r in caplog.records)
    _assert_complete(memory, embedder, ids)
    memory.close()


def test_index_is_saved_every_n_changes(tmp_path: Path) -> None:
    memory = VectorMemory.open(tmp_path, HashEmbedder(), IndexConfig(save_every=20))
    memory.add_many(TEXTS[:25], batch_size=5)
    sidecar = json.loads((tmp_path / "index" / "index.json").read_text())
    assert sidecar["count"] == 20  # saved once 20 changes had accumulated, not yet after 25
    memory.flush()
    assert json.loads((tmp_path / "index" / "index.json").read_text())["count"] == 25
    assert len(list((tmp_path / "index").glob("index-*.faiss"))) == 1  # old files are removed
    memory.close()


def test_kind_and_tombstones_survive_reopen(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = IndexConfig(flat_max=20)
    with VectorMemory.open(tmp_path, HashEmbedder(), config) as memory:
        memory.add_many(TEXTS)
        memory.add_many(["volcano one", "volcano two"], edit_id="e-1")
        memory.rollback("e-1")  # HNSW cannot delete: these two become tombstones
        assert memory.index_kind == "hnsw"
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, _ = _reopen(tmp_path, config)
    assert not _rebuilt(caplog)
    assert memory.index_kind == "hnsw"
    assert memory.index_size == memory.count(versions=True) == 60
    assert all(not h.item.text.startswith("volcano") for h in memory.search("volcano one", k=5))
    memory.close()


def test_no_index_dir_rebuilds_in_memory(tmp_path: Path) -> None:
    from memory import Database

    db = Database.open(tmp_path / "state.sqlite")
    first = VectorMemory(db, HashEmbedder(), None)
    first.add_many(TEXTS[:10])
    second_embedder = HashEmbedder()
    second = VectorMemory(db, second_embedder, None)  # another handle on the same database
    assert second.index_size == 10 and second_embedder.calls == 0
    assert {p.name for p in tmp_path.iterdir()} <= {"state.sqlite", "state.sqlite-wal", "state.sqlite-shm"}
    db.close()


def test_index_newer_than_the_database_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with VectorMemory.open(tmp_path, HashEmbedder()) as memory:
        memory.add_many(TEXTS[:10])
    shutil.copy(tmp_path / "state.sqlite", tmp_path / "backup.sqlite")  # closed cleanly: WAL checkpointed
    with VectorMemory.open(tmp_path, HashEmbedder()) as memory:
        memory.add_many(TEXTS[10:20])
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"state.sqlite{suffix}").unlink(missing_ok=True)
    shutil.move(tmp_path / "backup.sqlite", tmp_path / "state.sqlite")  # the database restored from a backup
    with caplog.at_level(logging.INFO, logger="memory"):
        memory, embedder = _reopen(tmp_path)
    assert _rebuilt(caplog) and embedder.calls == 0
    assert memory.index_size == memory.count(versions=True) == 10
    assert memory.search(TEXTS[15], k=1)[0].item.text != TEXTS[15]
    memory.close()
