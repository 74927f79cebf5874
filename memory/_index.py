"""The approximate-nearest-neighbour index: the ``VectorIndex`` seam and its FAISS implementation.

Vectors are unit-norm float32 rows; the score of a hit is their inner product (cosine similarity). Each
vector carries an int64 id (the vector memory uses the SQLite row id of the item version). The kind of
FAISS index follows the number of vectors (see :class:`IndexConfig`); switching kind re-adds the vectors
the index already holds, so nothing is re-embedded and the database is not read:

- ``flat``: exact ``IndexFlatIP`` (behind ``IndexIDMap``).
- ``hnsw``: ``IndexHNSWFlat`` (behind ``IndexIDMap``). HNSW cannot delete, so removed ids become
  tombstones filtered out of results and compacted away once they pass a fifth of the index.
- ``ivf``: ``IndexIVFFlat`` with its own ids. It needs training, so until ``ivf_train_min`` vectors exist
  they sit in a flat index; crossing the threshold trains k-means on a sample of them and re-adds all.
  With ``nlist=None`` the index is retrained with a larger ``nlist`` each time it grows fourfold.

faiss is imported inside functions so that ``import memory`` stays light.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from memory._config import IndexConfig
from tools.errors import ConfigError, IndexCorruptError, InvalidInputError, StoreError

__all__ = ["FaissIndex", "IndexKind", "VectorIndex"]

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw", "ivf"]
_RANK = {"flat": 0, "hnsw": 1, "ivf": 2}
GPU_MAX_K = 2048  # faiss GPU k-selection limit
_COMPACT_FRACTION = 0.2  # HNSW: rebuild once tombstones pass this share of the stored vectors
_TRAIN_PER_LIST = 40  # k-means sample: this many vectors per IVF list (faiss wants >= 39)
# faiss parallelises over queries; for a few queries an OpenMP team only adds barrier waits (10x slower on
# a busy 2-core machine), so those run on the calling thread.
_SERIAL_QUERIES = 4
_SERIAL_ADDS = 256  # likewise for small adds (one item at a time is the common case)


@runtime_checkable
class VectorIndex(Protocol):
    """Unit vectors under int64 ids, searched by inner product. Not thread-safe: callers serialise."""

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    @property
    def kind(self) -> str:
        """The structure in use now: ``flat``, ``hnsw`` or ``ivf``."""
        ...

    @property
    def is_exact(self) -> bool:
        """Whether :meth:`search` returns the exact top k."""
        ...

    def __len__(self) -> int:
        """Number of live (not removed) vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``(n, d)`` float32 unit ``vectors`` under ``n`` new int64 ``ids`` (ids must not be present)."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids (absent ones are ignored); returns how many were present."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(nq, k)``, best first; empty slots have id -1 and score -inf."""
        ...

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """All live ``(ids, vectors)``, to rebuild another index without re-embedding."""
        ...

    def save(self, path: Path) -> dict[str, Any]:
        """Write the index to ``path``; returns the JSON-able state :meth:`FaissIndex.load` needs back."""
        ...


def _faiss() -> Any:
    import faiss

    return faiss


def search_inputs(queries: object, dimension: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``(nq, d)`` float32 queries (one ``(d,)`` vector accepted) and the empty ``(nq, k)`` results
    every :class:`VectorIndex` pads with: scores ``-inf``, ids ``-1``.

    Raises:
        InvalidInputError: queries of another dimension, or ``k < 1``.
    """
    matrix = np.ascontiguousarray(queries, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    if matrix.ndim != 2 or matrix.shape[1] != dimension:
        raise InvalidInputError(f"queries must have shape (nq, {dimension}), got {matrix.shape}")
    if k < 1:
        raise InvalidInputError(f"k must be positive, got {k}")
    nq = matrix.shape[0]
    return matrix, np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def _as_ids(ids: object) -> np.ndarray:
    array = np.ascontiguousarray(np.asarray(ids), dtype=np.int64).reshape(-1)
    return array


class FaissIndex:
    """A :class:`VectorIndex` on FAISS whose structure follows its size (see the module docstring).

    Example:
        >>> index = FaissIndex(4, IndexConfig(kind="flat"))
        >>> index.add(np.array([7]), np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32))
        >>> index.search(np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32), 1)[1].tolist()
        [[7]]
    """

    def __init__(self, dimension: int, config: IndexConfig | None = None) -> None:
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ConfigError(f"index dimension must be a positive integer, got {dimension!r}")
        self._d = dimension
        self._config = config or IndexConfig()
        self._gpu = _want_gpu(self._config)
        self._resources: Any = None
        self._dead: set[int] = set()
        self._dead_array = np.empty(0, dtype=np.int64)
        self._trained_n = 0
        kind = self._target_kind(0)
        self._kind: IndexKind = kind
        self._index = self._place(self._new_index(kind, None))

    # -- properties -----------------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._d

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def is_exact(self) -> bool:
        return self._kind == "flat"

    @property
    def on_gpu(self) -> bool:
        return self._gpu and self._kind != "hnsw"

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._dead)

    # -- writes ---------------------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        id_array = _as_ids(ids)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self._d or matrix.shape[0] != id_array.shape[0]:
            raise InvalidInputError(
                f"add() needs ({id_array.shape[0]}, {self._d}) vectors for {id_array.shape[0]} ids, got {matrix.shape}"
            )
        if not id_array.size:
            return
        try:
            with _omp_threads(1 if id_array.size < _SERIAL_ADDS else None):
                self._index.add_with_ids(matrix, id_array)
        except RuntimeError as exc:
            raise StoreError(f"faiss add failed: {exc}") from exc
        self._maybe_migrate()

    def remove(self, ids: np.ndarray) -> int:
        id_array = _as_ids(ids)
        if not id_array.size or not self._index.ntotal:
            return 0
        if self._kind != "hnsw" and not self.on_gpu:
            try:
                return int(self._index.remove_ids(id_array))
            except RuntimeError as exc:
                raise StoreError(f"faiss remove failed: {exc}") from exc
        # HNSW and GPU indexes cannot delete: remember tombstones for the ids actually present.
        stored, _ = self._stored(with_vectors=False)
        present = {int(i) for i in id_array[np.isin(id_array, stored)]} - self._dead
        if present:
            self._dead |= present
            self._dead_array = np.fromiter(sorted(self._dead), dtype=np.int64)
            if len(self._dead) > _COMPACT_FRACTION * self._index.ntotal:
                logger.info(
                    "compacting %s index: %d of %d vectors removed", self._kind, len(self._dead), self._index.ntotal
                )
                live_ids, live_vectors = self.export()
                self._rebuild(self._kind, live_ids, live_vectors)
        return len(present)

    # -- reads ----------------------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        matrix, scores, ids = search_inputs(queries, self._d, k)
        nq = matrix.shape[0]
        total = int(self._index.ntotal)
        if not total or not nq:
            return scores, ids
        fetch = min(k + len(self._dead), total)
        if self.on_gpu:
            fetch = min(fetch, GPU_MAX_K)
        try:
            with _omp_threads(1 if nq <= _SERIAL_QUERIES else None):
                found_scores, found_ids = self._index.search(matrix, fetch)
        except RuntimeError as exc:
            raise StoreError(f"faiss search failed: {exc}") from exc
        if not self._dead:
            scores[:, :fetch] = found_scores[:, :k]
            ids[:, :fetch] = found_ids[:, :k]
            return scores, ids
        keep = (found_ids >= 0) & ~np.isin(found_ids, self._dead_array)
        for row in range(nq):
            row_ids = found_ids[row][keep[row]][:k]
            ids[row, : row_ids.size] = row_ids
            scores[row, : row_ids.size] = found_scores[row][keep[row]][:k]
        return scores, ids

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        ids, vectors = self._stored(with_vectors=True)
        if self._dead:
            live = ~np.isin(ids, self._dead_array)
            ids, vectors = ids[live], vectors[live]
        return ids, vectors

    # -- persistence ----------------------------------------------------------------------------------------

    def save(self, path: Path) -> dict[str, Any]:
        faiss = _faiss()
        try:
            faiss.write_index(self._cpu_index(), str(path))
        except RuntimeError as exc:
            raise StoreError(f"cannot write index {path}: {exc}") from exc
        return {"kind": self._kind, "dead": sorted(self._dead), "trained_n": self._trained_n}

    @classmethod
    def load(cls, path: Path, dimension: int, config: IndexConfig | None, state: dict[str, Any]) -> FaissIndex:
        """Read an index written by :meth:`save`, then adapt it to ``config`` (parameters, kind).

        Raises:
            IndexCorruptError: the file is unreadable or does not match ``dimension`` / ``state``.
        """
        faiss = _faiss()
        try:
            raw = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(f"cannot read index {path}: {exc}") from exc
        kind = state.get("kind")
        found = type(raw).__name__
        if found == "IndexIDMap":
            found = "hnsw" if _is_hnsw(raw) else "flat"
        elif found == "IndexIVFFlat":
            found = "ivf"
        if found != kind:
            raise IndexCorruptError(f"{path}: holds a {found} index, the sidecar says {kind!r}")
        if raw.d != dimension:
            raise IndexCorruptError(f"{path}: index dimension {raw.d}, expected {dimension}")
        dead = state.get("dead", [])
        if not isinstance(dead, list) or not all(isinstance(i, int) for i in dead):
            raise IndexCorruptError(f"{path}: malformed tombstone list in the sidecar")
        self = cls.__new__(cls)
        self._d = dimension
        self._config = config or IndexConfig()
        self._gpu = _want_gpu(self._config)
        self._resources = None
        self._kind = kind
        self._dead = set(dead)
        self._dead_array = np.fromiter(sorted(self._dead), dtype=np.int64)
        self._trained_n = int(state.get("trained_n", 0))
        self._tune(raw)
        self._index = self._place(raw)
        self._maybe_migrate(allow_down=True)
        return self

    # -- internals ------------------------------------------------------------------------------------------

    def _target_kind(self, n: int) -> IndexKind:
        config = self._config
        if config.kind in ("flat", "hnsw"):
            return config.kind
        if config.kind == "ivf":
            return "ivf" if n >= config.ivf_train_min else "flat"
        if config.ivf_min is not None and n >= config.ivf_min:
            return "ivf"
        # On a GPU exact search stays fast well past flat_max, and faiss has no GPU HNSW.
        return "hnsw" if n >= config.flat_max and not self._gpu else "flat"

    def _maybe_migrate(self, allow_down: bool = False) -> None:
        n = len(self)
        target = self._target_kind(n)
        explicit = self._config.kind in ("flat", "hnsw")
        grow = target == self._kind == "ivf" and self._config.nlist is None and n >= 4 * max(self._trained_n, 1)
        # Auto kinds only move up as the index grows, so a rollback near a threshold cannot make it flap.
        move = _RANK[target] > _RANK[self._kind] or ((explicit or allow_down) and target != self._kind)
        if not (move or grow):
            return
        logger.info("rebuilding the %s index of %d vectors as %s", self._kind, n, target)
        ids, vectors = self.export()
        self._rebuild(target, ids, vectors)

    def _rebuild(self, kind: IndexKind, ids: np.ndarray, vectors: np.ndarray) -> None:
        index = self._new_index(kind, vectors)
        try:
            index.add_with_ids(vectors, ids)
        except RuntimeError as exc:
            raise StoreError(f"faiss add failed while rebuilding as {kind}: {exc}") from exc
        self._index = self._place(index)
        self._kind = kind
        self._dead = set()
        self._dead_array = np.empty(0, dtype=np.int64)

    def _new_index(self, kind: IndexKind, train: np.ndarray | None) -> Any:
        """A CPU index of ``kind``; IVF is trained on (a sample of) ``train``."""
        faiss = _faiss()
        metric = faiss.METRIC_INNER_PRODUCT
        if kind == "flat":
            return faiss.index_factory(self._d, "IDMap,Flat", metric)
        if kind == "hnsw":
            index = faiss.index_factory(self._d, f"IDMap,HNSW{self._config.hnsw_m},Flat", metric)
            self._tune(index)
            return index
        n = 0 if train is None else train.shape[0]
        if train is None or n < 1:
            raise StoreError("an IVF index needs training vectors")
        nlist = self._config.nlist or max(1, min(round(4 * math.sqrt(n)), n // 39))
        nlist = min(nlist, n)
        index = faiss.index_factory(self._d, f"IVF{nlist},Flat", metric)
        sample = train
        if n > _TRAIN_PER_LIST * nlist:  # k-means cost grows with the sample; 40 per list is plenty
            rows = np.random.default_rng(0).choice(n, _TRAIN_PER_LIST * nlist, replace=False)
            sample = train[np.sort(rows)]
        try:
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        except RuntimeError as exc:
            raise StoreError(f"IVF training failed: {exc}") from exc
        self._trained_n = n
        self._tune(index)
        return index

    def _tune(self, cpu_index: Any) -> None:
        """Apply the query-time parameters of the config to a CPU index."""
        faiss = _faiss()
        if type(cpu_index).__name__ == "IndexIVFFlat":
            cpu_index.nprobe = self._nprobe(int(cpu_index.nlist))
            return
        inner = faiss.downcast_index(cpu_index.index)
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = self._config.ef_search
            inner.hnsw.efConstruction = self._config.ef_construction

    def _nprobe(self, nlist: int) -> int:
        return min(nlist, self._config.nprobe or max(64, nlist // 32))

    def _place(self, cpu_index: Any) -> Any:
        """Move a flat or IVF index to the GPU when one is used (HNSW stays on the CPU)."""
        faiss = _faiss()
        if not self._gpu or (type(cpu_index).__name__ == "IndexIDMap" and _is_hnsw(cpu_index)):
            return cpu_index
        if self._resources is None:
            self._resources = faiss.StandardGpuResources()
        try:
            gpu_index = faiss.index_cpu_to_gpu(self._resources, 0, cpu_index)
        except RuntimeError as exc:
            # A faiss build without GPU support for this structure: the CPU index gives the same answers.
            logger.warning("cannot move the index to the GPU (%s); staying on the CPU", exc)
            self._gpu = False
            return cpu_index
        if type(cpu_index).__name__ == "IndexIVFFlat":
            faiss.ParameterSpace().set_index_parameter(gpu_index, "nprobe", self._nprobe(int(cpu_index.nlist)))
        return gpu_index

    def _cpu_index(self) -> Any:
        if not self.on_gpu:
            return self._index
        return _faiss().index_gpu_to_cpu(self._index)

    def _stored(self, with_vectors: bool) -> tuple[np.ndarray, np.ndarray]:
        """All stored ids (tombstones included) and, if asked, their vectors (else an empty array)."""
        faiss = _faiss()
        index = self._cpu_index()
        no_vectors = np.empty((0, self._d), dtype=np.float32)
        if type(index).__name__ != "IndexIVFFlat":
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            inner = faiss.downcast_index(index.index)
            if not with_vectors or not inner.ntotal:
                return ids, no_vectors
            return ids, np.ascontiguousarray(inner.reconstruct_n(0, int(inner.ntotal)), dtype=np.float32)
        invlists = index.invlists
        id_parts: list[np.ndarray] = []
        vector_parts: list[np.ndarray] = []
        for list_no in range(int(index.nlist)):
            size = int(invlists.list_size(list_no))
            if not size:
                continue
            id_parts.append(faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy())
            if with_vectors:
                codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * invlists.code_size).copy()
                vector_parts.append(codes.view(np.float32).reshape(size, self._d))
        ids = np.concatenate(id_parts).astype(np.int64) if id_parts else np.empty(0, dtype=np.int64)
        return ids, np.concatenate(vector_parts) if vector_parts else no_vectors


def _is_hnsw(idmap_index: Any) -> bool:
    return hasattr(_faiss().downcast_index(idmap_index.index), "hnsw")


@contextmanager
def _omp_threads(threads: int | None) -> Iterator[None]:
    """Run faiss calls of this thread with ``threads`` OpenMP threads (the setting is per calling thread)."""
    if threads is None:
        yield
        return
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _want_gpu(config: IndexConfig) -> bool:
    if config.use_gpu is False:
        return False
    gpus = int(getattr(_faiss(), "get_num_gpus", lambda: 0)())
    if config.use_gpu and gpus < 1:
        raise ConfigError("IndexConfig.use_gpu=True but faiss sees no GPU (install faiss-gpu or set use_gpu=None)")
    return gpus > 0
