"""FaissIndex: the VectorIndex contract for each kind, kind changes by size, recall, persistence checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memory import FaissIndex, IndexConfig, VectorIndex
from tests.memory.fakes import clustered_rows, unit_rows
from tests.memory.index_contract import DIM, IndexContract
from tools.errors import ConfigError, IndexCorruptError


def _faiss_gpus() -> int:
    import faiss

    return int(getattr(faiss, "get_num_gpus", lambda: 0)())


class TestFlat(IndexContract):
    expected_kind = "flat"
    config = IndexConfig(kind="flat", use_gpu=False)

    def make_index(self) -> VectorIndex:
        return FaissIndex(DIM, self.config)

    def reload(self, path: Path, state: dict[str, Any]) -> VectorIndex:
        return FaissIndex.load(path, DIM, self.config, state)


class TestHNSW(TestFlat):
    expected_kind = "hnsw"
    config = IndexConfig(kind="hnsw", use_gpu=False)


class TestIVF(TestFlat):
    expected_kind = "ivf"
    config = IndexConfig(kind="ivf", ivf_train_min=1_000, use_gpu=False)


class TestAutoPastFlatMax(TestFlat):
    """``auto`` switches from exact to HNSW when it crosses flat_max, keeping every vector."""

    expected_kind = "hnsw"
    config = IndexConfig(kind="auto", flat_max=700, use_gpu=False)


@pytest.mark.skipif(_faiss_gpus() == 0, reason="faiss sees no GPU")
class TestFlatOnGPU(TestFlat):
    config = IndexConfig(kind="flat", use_gpu=True)


@pytest.mark.skipif(_faiss_gpus() == 0, reason="faiss sees no GPU")
class TestIVFOnGPU(TestFlat):
    expected_kind = "ivf"
    config = IndexConfig(kind="ivf", ivf_train_min=1_000, use_gpu=True)


def test_auto_grows_flat_then_hnsw_then_ivf() -> None:
    index = FaissIndex(DIM, IndexConfig(flat_max=300, ivf_min=900, ivf_train_min=1, use_gpu=False))
    vectors = unit_rows(1_200, DIM)
    kinds = []
    for lo in range(0, 1_200, 200):
        index.add(np.arange(lo, lo + 200), vectors[lo : lo + 200])
        kinds.append(index.kind)
    assert kinds == ["flat", "hnsw", "hnsw", "hnsw", "ivf", "ivf"]
    _, ids = index.search(vectors[::50], 1)
    assert ids[:, 0].tolist() == list(range(0, 1_200, 50))


def test_auto_does_not_shrink_back_after_removals() -> None:
    index = FaissIndex(DIM, IndexConfig(flat_max=300, use_gpu=False))
    index.add(np.arange(400), unit_rows(400, DIM))
    index.remove(np.arange(150))
    assert (index.kind, len(index)) == ("hnsw", 250)


def test_ivf_waits_for_training_data_then_retrains_as_it_grows() -> None:
    index = FaissIndex(DIM, IndexConfig(kind="ivf", ivf_train_min=500, use_gpu=False))
    vectors = clustered_rows(4_000, DIM, seed=3)
    index.add(np.arange(499), vectors[:499])
    assert index.kind == "flat"
    index.add(np.arange(499, 1_000), vectors[499:1_000])
    assert index.kind == "ivf"
    first_nlist = _nlist(index)
    index.add(np.arange(1_000, 4_000), vectors[1_000:])
    assert _nlist(index) > first_nlist  # retrained at 4x the size it was trained on
    _, ids = index.search(vectors[::97], 1)
    assert ids[:, 0].tolist() == list(range(0, 4_000, 97))


def _nlist(index: FaissIndex) -> int:
    return int(index._index.nlist)


def test_hnsw_compacts_tombstones() -> None:
    index = FaissIndex(DIM, IndexConfig(kind="hnsw", use_gpu=False))
    vectors = unit_rows(500, DIM)
    index.add(np.arange(500), vectors)
    index.remove(np.arange(50))
    assert index._index.ntotal == 500  # tombstoned, not yet rebuilt
    index.remove(np.arange(50, 120))
    assert index._index.ntotal == len(index) == 380  # past a fifth removed: rebuilt without them
    _, ids = index.search(vectors[120:130], 1)
    assert ids[:, 0].tolist() == list(range(120, 130))


def _recall(index: FaissIndex, data: np.ndarray, queries: np.ndarray) -> float:
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    _, found = index.search(queries, 10)
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found.tolist(), exact.tolist(), strict=True)]))


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_recall_small(kind: str) -> None:
    data = clustered_rows(3_000, 64, seed=5, bases=300)
    queries = clustered_rows(100, 64, seed=6, bases=300)
    index = FaissIndex(64, IndexConfig(kind=kind, ivf_train_min=1_000, use_gpu=False))  # type: ignore[arg-type]
    index.add(np.arange(3_000), data)
    assert index.kind == kind
    assert _recall(index, data, queries) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_recall_at_20k_with_default_parameters(kind: str) -> None:
    """The default parameters (chosen for 1M) against exact search: recall@10 >= 0.95, query ~1 ms."""
    data = clustered_rows(20_000, 384, seed=7, bases=2_000)
    queries = clustered_rows(200, 384, seed=8, bases=2_000)
    # ivf_train_min lowered so IVF trains at this size; nlist/nprobe stay at their defaults.
    index = FaissIndex(384, IndexConfig(kind=kind, ivf_train_min=10_000, use_gpu=False))  # type: ignore[arg-type]
    for lo in range(0, 20_000, 2_000):
        index.add(np.arange(lo, lo + 2_000), data[lo : lo + 2_000])
    assert index.kind == kind
    assert _recall(index, data, queries) >= 0.95
    started = time.perf_counter()
    for query in queries:
        index.search(query, 10)
    assert (time.perf_counter() - started) / len(queries) < 0.02  # generous: a busy 2-core CI box


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        IndexConfig(kind="annoy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        IndexConfig(flat_max=0)
    with pytest.raises(ConfigError):
        IndexConfig(nprobe=-1)
    with pytest.raises(ConfigError):
        FaissIndex(0)


@pytest.mark.skipif(_faiss_gpus() > 0, reason="a GPU is present")
def test_use_gpu_without_a_gpu_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no GPU"):
        FaissIndex(DIM, IndexConfig(use_gpu=True))


def test_load_rejects_unreadable_or_mismatched_files(tmp_path: Path) -> None:
    index = FaissIndex(DIM, IndexConfig(kind="flat"))
    index.add(np.arange(10), unit_rows(10, DIM))
    state = index.save(tmp_path / "ok.faiss")
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(IndexCorruptError):
        FaissIndex.load(tmp_path / "bad.faiss", DIM, None, state)
    with pytest.raises(IndexCorruptError, match="dimension"):
        FaissIndex.load(tmp_path / "ok.faiss", DIM + 1, None, state)
    for kind in ("ivf", "hnsw", None):
        with pytest.raises(IndexCorruptError, match="sidecar says"):
            FaissIndex.load(tmp_path / "ok.faiss", DIM, None, {**state, "kind": kind})
    with pytest.raises(IndexCorruptError, match="tombstone"):
        FaissIndex.load(tmp_path / "ok.faiss", DIM, None, {**state, "dead": "x"})
    back = FaissIndex.load(tmp_path / "ok.faiss", DIM, IndexConfig(kind="hnsw"), state)
    assert (back.kind, len(back)) == ("hnsw", 10)  # an explicit kind is honoured on load
