"""The contract every ``VectorIndex`` must keep; run per index kind by subclassing ``IndexContract``.

A subclass provides ``make_index`` (an empty index of dimension ``DIM``), ``reload`` (read back what
``save`` wrote) and ``expected_kind`` (the structure the index must be in once it holds ``N`` vectors).
Ids are large (> 2**40) on purpose: they are database row ids, not positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memory import VectorIndex
from tests.memory.fakes import clustered_rows

DIM = 32
N = 1_500
BASE_ID = 2**40


class IndexContract:
    expected_kind = "flat"

    def make_index(self) -> VectorIndex:
        raise NotImplementedError

    def reload(self, path: Path, state: dict[str, Any]) -> VectorIndex:
        raise NotImplementedError

    @pytest.fixture
    def vectors(self) -> np.ndarray:
        return clustered_rows(N, DIM, seed=1)

    @pytest.fixture
    def full(self, vectors: np.ndarray) -> VectorIndex:
        index = self.make_index()
        for lo in range(0, N, 500):  # several adds, as the memory does batch by batch
            index.add(BASE_ID + np.arange(lo, lo + 500), vectors[lo : lo + 500])
        return index

    def test_is_a_vector_index(self) -> None:
        index = self.make_index()
        assert isinstance(index, VectorIndex)
        assert index.dimension == DIM
        assert len(index) == 0

    def test_empty_index_finds_nothing(self) -> None:
        scores, ids = self.make_index().search(np.ones((1, DIM), dtype=np.float32) / np.sqrt(DIM), 5)
        assert ids.shape == scores.shape == (1, 5)
        assert (ids == -1).all()

    def test_reaches_its_kind(self, full: VectorIndex) -> None:
        assert len(full) == N
        assert full.kind == self.expected_kind
        assert full.is_exact == (self.expected_kind == "flat")

    def test_each_vector_finds_itself_first(self, full: VectorIndex, vectors: np.ndarray) -> None:
        rows = np.arange(0, N, 37)
        scores, ids = full.search(vectors[rows], 3)
        assert ids[:, 0].tolist() == (BASE_ID + rows).tolist()
        assert np.allclose(scores[:, 0], 1.0, atol=1e-4)

    def test_scores_are_inner_products_best_first(self, full: VectorIndex, vectors: np.ndarray) -> None:
        query = vectors[5] + 0.3 * vectors[900]
        query = (query / np.linalg.norm(query)).astype(np.float32)
        scores, ids = full.search(query, 10)
        assert (np.diff(scores[0]) <= 1e-6).all()
        expected = vectors[ids[0] - BASE_ID] @ query
        assert np.allclose(scores[0], expected, atol=1e-4)

    def test_k_beyond_size_pads(self, vectors: np.ndarray) -> None:
        index = self.make_index()
        index.add(np.array([BASE_ID, BASE_ID + 1]), vectors[:2])
        scores, ids = index.search(vectors[:1], 5)
        assert sorted(ids[0][:2].tolist()) == [BASE_ID, BASE_ID + 1]
        assert (ids[0][2:] == -1).all()
        assert np.isneginf(scores[0][2:]).all()

    def test_remove_hides_ids_and_ignores_absent(self, full: VectorIndex, vectors: np.ndarray) -> None:
        gone = BASE_ID + np.arange(0, 60)
        assert full.remove(np.concatenate([gone, [7, BASE_ID + 10**6]])) == 60
        assert len(full) == N - 60
        _, ids = full.search(vectors[:60], 5)
        assert not np.isin(ids, gone).any()
        assert full.remove(gone) == 0  # already gone
        assert len(full) == N - 60

    def test_export_returns_what_is_live(self, full: VectorIndex, vectors: np.ndarray) -> None:
        full.remove(BASE_ID + np.arange(100, 110))
        ids, exported = full.export()
        order = np.argsort(ids)
        live = np.setdiff1d(np.arange(N), np.arange(100, 110))
        assert (ids[order] == BASE_ID + live).all()
        assert np.allclose(exported[order], vectors[live], atol=1e-6)

    def test_save_and_load_round_trip(self, full: VectorIndex, vectors: np.ndarray, tmp_path: Path) -> None:
        full.remove(BASE_ID + np.arange(5))
        state = full.save(tmp_path / "x.faiss")
        back = self.reload(tmp_path / "x.faiss", state)
        assert len(back) == len(full) == N - 5
        assert back.kind == full.kind
        for index in (full, back):
            _, ids = index.search(vectors[5:40], 1)
            assert ids[:, 0].tolist() == (BASE_ID + np.arange(5, 40)).tolist()
        _, ids = back.search(vectors[:5], 3)
        assert not np.isin(ids, BASE_ID + np.arange(5)).any()

    def test_batch_queries_match_single_queries(self, full: VectorIndex, vectors: np.ndarray) -> None:
        batch_scores, batch_ids = full.search(vectors[:20], 4)
        for i in range(20):
            scores, ids = full.search(vectors[i], 4)
            assert ids[0][0] == batch_ids[i][0]
            assert np.isclose(scores[0][0], batch_scores[i][0], atol=1e-5)

    def test_wrong_shapes_are_rejected(self, full: VectorIndex) -> None:
        from tools.errors import InvalidInputError

        with pytest.raises(InvalidInputError):
            full.add(np.array([1]), np.zeros((1, DIM + 1), dtype=np.float32))
        with pytest.raises(InvalidInputError):
            full.add(np.array([1, 2]), np.zeros((1, DIM), dtype=np.float32))
        with pytest.raises(InvalidInputError):
            full.search(np.zeros((1, DIM - 1), dtype=np.float32), 3)
        assert len(full) == N
