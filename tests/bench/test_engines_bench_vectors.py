"""The engines benchmark's vector table keeps every stage in its workdir, so a killed run resumes there."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import engines_bench
from memory import FaissIndex
from memory._milvus_index import MilvusIndex

pytest.importorskip("pymilvus")

SIZE, BASE, QUERIES = 300, 60, 5


class HashEmbedder:
    """Deterministic unit vectors from a hash of the text; counts the texts it embedded."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        rows = [
            np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")).standard_normal(16)
            for t in texts
        ]
        matrix = np.asarray(rows, dtype=np.float32)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


class KilledError(Exception):
    """Stands for the run being killed."""


def run(workdir: Path, embedder: Any, index: str = "IVF_FLAT") -> list[dict[str, Any]]:
    return engines_bench.bench_vectors([SIZE], BASE, QUERIES, workdir, milvus_index=index, embedder=embedder)


def test_a_killed_run_resumes_after_its_last_finished_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines_bench, "VECTOR_CHUNK", 100)
    real_add = MilvusIndex.add
    added: list[int] = []

    def add_then_die(self: MilvusIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        if added:  # the second chunk: killed before it is recorded
            raise KilledError
        added.append(int(ids[0]))
        real_add(self, ids, vectors)

    monkeypatch.setattr(MilvusIndex, "add", add_then_die)
    with pytest.raises(KilledError):
        run(tmp_path, HashEmbedder())
    folder = tmp_path / f"vectors-{SIZE}"
    for kept in ("vectors.npy", "truth.npy", "faiss.index", "faiss.json", "faiss.row.json", "milvus-IVF_FLAT.db"):
        assert (folder / kept).exists(), kept
    assert json.loads((folder / "milvus-IVF_FLAT.json").read_text())["inserted"] == 100
    vectors = np.load(folder / "vectors.npy")

    # the resumed run: nothing embedded, derived, built or dropped again; Milvus continues at row 100
    starts: list[int] = []

    def add_recorded(self: MilvusIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        starts.append(int(ids[0]))
        real_add(self, ids, vectors)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(MilvusIndex, "add", add_recorded)
    monkeypatch.setattr(MilvusIndex, "create", refuse)
    monkeypatch.setattr(FaissIndex, "add", refuse)
    monkeypatch.setattr("bench._data.derived_vectors", refuse)
    embedder = HashEmbedder()
    rows = run(tmp_path, embedder)
    assert embedder.calls == 0
    assert starts == [100, 200]
    assert [r["system"] for r in rows] == ["faiss (auto)", "milvus-lite (IVF_FLAT)"]
    milvus = rows[1]
    assert milvus["vectors"] == SIZE and milvus["recall_at_10"] > 0.5
    assert milvus["stages"]["index_s"] is not None
    assert np.array_equal(np.load(folder / "vectors.npy"), vectors)
    progress = json.loads((folder / "milvus-IVF_FLAT.json").read_text())
    assert progress["inserted"] == SIZE and progress["indexed"] is True

    # a third run only reports the rows it kept (no search at all)
    monkeypatch.setattr(MilvusIndex, "search", refuse)
    monkeypatch.setattr(FaissIndex, "search", refuse)
    assert run(tmp_path, embedder) == rows


def test_the_milvus_file_holds_every_row_once_after_a_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk sent before the kill but not recorded is sent again: upserts by id keep one row per id."""
    from memory._milvus_index import MilvusConfig, connect

    monkeypatch.setattr(engines_bench, "VECTOR_CHUNK", 100)
    real_add = MilvusIndex.add
    calls: list[int] = []

    def add_then_die(self: MilvusIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        real_add(self, ids, vectors)
        calls.append(int(ids[0]))
        if len(calls) == 2:  # sent, then killed before its progress is written
            raise KilledError

    monkeypatch.setattr(MilvusIndex, "add", add_then_die)
    with pytest.raises(KilledError):
        engines_bench.bench_vectors(
            [SIZE], BASE, QUERIES, tmp_path, milvus_index="FLAT", systems=["milvus"], embedder=HashEmbedder()
        )
    monkeypatch.setattr(MilvusIndex, "add", real_add)
    rows = engines_bench.bench_vectors(
        [SIZE], BASE, QUERIES, tmp_path, milvus_index="FLAT", systems=["milvus"], embedder=HashEmbedder()
    )
    assert rows[0]["recall_at_10"] == 1.0  # FLAT is exact
    uri = str(tmp_path / f"vectors-{SIZE}" / "milvus-FLAT.db")
    client = connect(MilvusConfig(uri=uri))
    index = MilvusIndex(client, MilvusConfig(uri=uri, collection=f"bench_{SIZE}", index_type="FLAT"), 16)
    assert len(index) == SIZE
    client.close()


def test_seconds_waited_for_the_index_count_when_the_wait_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_wait = MilvusIndex.wait_indexed

    def wait_then_die(self: MilvusIndex, timeout_s: float = 600.0) -> bool:
        time.sleep(0.2)
        raise KilledError

    monkeypatch.setattr(MilvusIndex, "wait_indexed", wait_then_die)
    with pytest.raises(KilledError):
        engines_bench.bench_vectors(
            [SIZE], BASE, QUERIES, tmp_path, milvus_index="FLAT", systems=["milvus"], embedder=HashEmbedder()
        )
    progress_path = tmp_path / f"vectors-{SIZE}" / "milvus-FLAT.json"
    progress = json.loads(progress_path.read_text())
    assert progress["inserted"] == SIZE and progress["indexed"] is None and progress["index_s"] >= 0.2
    monkeypatch.setattr(MilvusIndex, "wait_indexed", real_wait)
    rows = engines_bench.bench_vectors(
        [SIZE], BASE, QUERIES, tmp_path, milvus_index="FLAT", systems=["milvus"], embedder=HashEmbedder()
    )
    assert rows[0]["stages"]["index_s"] >= 0.2  # the killed wait and the finished one
    assert json.loads(progress_path.read_text())["indexed"] is True
