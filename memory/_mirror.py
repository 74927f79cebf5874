"""The in-memory FAISS index, kept in step with the database through the change log ``mem_log``.

SQLite is the source of truth; the index is a cache of its vectors keyed by row id. Each process keeps
its own index and remembers the last log entry it applied (``seq``). Before a search, and at the start of
every write transaction, it applies the entries written since (by other processes, or by this one inside a
transaction that has committed since), so no committed change is lost or invisible. The process's own
committed writes are applied directly from the vectors it already holds.

On open the saved index is loaded and caught up; if it is missing, unreadable, for another database or
inconsistent, it is rebuilt from the vectors stored in SQLite. Nothing is ever re-embedded.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from memory._config import IndexConfig
from memory._index import FaissIndex, VectorIndex
from memory._milvus_index import MilvusConfig, MilvusState
from memory._persist import IndexFiles, Sidecar
from tools.errors import IndexCorruptError, IndexUnavailableError, StoreError

__all__ = ["IndexMirror", "IndexStorage", "PendingChanges"]

logger = logging.getLogger(__name__)

_READ_CHUNK = 16_384  # rows per fetch while catching up or rebuilding


@dataclass
class PendingChanges:
    """What one write transaction did to the vectors, applied to the index once it has committed."""

    added_ids: list[int] = field(default_factory=list)
    added_vectors: list[np.ndarray] = field(default_factory=list)  # (n_i, d) blocks
    removed_ids: list[int] = field(default_factory=list)
    last_seq: int = 0  # last mem_log seq the transaction wrote (0: none)


class IndexStorage(Protocol):
    """Where an index persists between runs: FAISS files (:class:`memory._persist.IndexFiles`) or a Milvus
    collection with its state (:class:`memory._milvus_index.MilvusState`)."""

    directory: Any

    def load(self, dimension: int, config: IndexConfig, db_id: str) -> tuple[VectorIndex, Sidecar] | None:
        """The saved index and its sidecar, or None when there is none (the mirror then rebuilds)."""
        ...

    def save(self, index: Any, seq: int, db_id: str) -> bool:
        """Persist the index (or its log position) at ``seq``."""
        ...


class IndexMirror:
    """Owns the vector index, its storage and the log position. Callers hold the database lock.

    ``new_index`` makes an empty index (default: a :class:`FaissIndex` of ``config``); the Milvus backend
    passes one that creates a fresh collection.
    """

    def __init__(
        self,
        dimension: int,
        config: IndexConfig,
        files: IndexStorage | None,
        db_id: str,
        new_index: Callable[[], VectorIndex] | None = None,
    ) -> None:
        self._dimension = dimension
        self._config = config
        self._files = files
        self._db_id = db_id
        self._new_index: Callable[[], VectorIndex] = new_index or (lambda: FaissIndex(dimension, config))
        self._close: Callable[[], None] = lambda: None
        self.index: VectorIndex = self._new_index() if new_index is None else _Empty(dimension)
        self.seq = 0
        self._unsaved = 0  # index changes since the file was written
        self._broken = False  # an index write failed after a commit: rebuild before the next use

    @classmethod
    def for_backend(
        cls,
        dimension: int,
        config: IndexConfig,
        db_id: str,
        index_dir: Path | None,
        milvus: MilvusConfig | None = None,
    ) -> IndexMirror:
        """A mirror on a Milvus collection when ``milvus`` is given, else on FAISS with files in ``index_dir``
        (``None``: rebuilt from the database at every open). Call :meth:`open` next."""
        if milvus is not None:
            state = MilvusState(milvus)
            mirror = cls(dimension, config, state, db_id, new_index=lambda: state.new_index(dimension))
            mirror._close = state.close
            return mirror
        return cls(dimension, config, IndexFiles(Path(index_dir)) if index_dir is not None else None, db_id)

    def close(self) -> None:
        """Release the storage's connections (a Milvus client); the index itself was saved by :meth:`save`."""
        self._close()

    def open(self, conn: sqlite3.Connection) -> None:
        """Load the saved index (or rebuild it) and catch it up with the database."""
        loaded = None
        if self._files is not None:
            try:
                loaded = self._files.load(self._dimension, self._config, self._db_id)
            except IndexCorruptError as exc:
                logger.error(
                    "vector index in %s is unusable (%s); rebuilding it from the database", self._files.directory, exc
                )
        if loaded is None:
            self.rebuild(conn)
            return
        index, sidecar = loaded
        versions = -1
        with _snapshot(conn):
            last = _last_seq(conn)
            if sidecar.seq <= last:
                self.index, self.seq = index, sidecar.seq
                self._catch_up(conn)
                versions = int(conn.execute("SELECT COUNT(*) FROM mem_items").fetchone()[0])
        if sidecar.seq > last or versions != len(self.index):
            logger.error(
                "saved vector index does not match the database (log seq %d of %d, %d vectors for %d versions); "
                "rebuilding it",
                sidecar.seq,
                last,
                len(self.index),
                versions,
            )
            self.rebuild(conn)

    def sync(self, conn: sqlite3.Connection) -> None:
        """Apply the log entries written since ``seq`` (call outside, or at the start of, a transaction)."""
        if self._broken:
            self.rebuild(conn)
            return
        try:
            self._catch_up(conn)
        except IndexUnavailableError as exc:  # a Milvus collection gone or reset: SQLite has it all
            logger.error("vector index unavailable while catching up (%s); rebuilding it", exc)
            self.rebuild(conn)

    def rebuild(self, conn: sqlite3.Connection) -> None:
        """A new index from every vector stored in the database (one consistent snapshot)."""
        index = self._new_index()
        with _snapshot(conn):
            seq = _last_seq(conn)
            cursor = conn.execute("SELECT row_id, vector FROM mem_vectors ORDER BY row_id")
            while rows := cursor.fetchmany(_READ_CHUNK):
                ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                index.add(ids, _matrix([r[1] for r in rows], self._dimension))
        self.index, self.seq, self._broken = index, seq, False
        logger.info("rebuilt the %s vector index from the database: %d vectors", index.kind, len(index))
        self._unsaved = max(len(index), 1)
        self.save()

    def apply(self, changes: PendingChanges) -> None:
        """Apply a committed transaction's own changes, then save the file if enough accumulated."""
        try:
            if changes.added_ids:
                self.index.add(np.asarray(changes.added_ids, dtype=np.int64), np.vstack(changes.added_vectors))
            if changes.removed_ids:
                self.index.remove(np.asarray(changes.removed_ids, dtype=np.int64))
        except StoreError:
            # The write is committed (SQLite is the truth); only the cache is behind. Rebuild on next use.
            logger.exception("vector index update failed after commit; it will be rebuilt from the database")
            self._broken = True
            return
        self.seq = max(self.seq, changes.last_seq)
        self._unsaved += len(changes.added_ids) + len(changes.removed_ids)
        # Half the size as a floor keeps the total bytes written while growing to n at about 2n.
        # (len() last: on Milvus it is a request)
        if self._unsaved >= self._config.save_every and self._unsaved >= len(self.index) // 2:
            self.save()

    def save(self) -> None:
        """Write the index file if it is behind (no-op without an index directory)."""
        if self._files is None or not self._unsaved or self._broken:
            return
        try:
            self._files.save(self.index, self.seq, self._db_id)
        except StoreError:
            # Losing the file only costs a catch-up from the log on the next open; keep serving.
            logger.exception("cannot save the vector index; it will be caught up from the database on open")
            return
        self._unsaved = 0

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        # One statement = one snapshot. An entry whose row still exists is an add (a row is logged once
        # when inserted); one whose row is gone is a removal (removing an absent id is a no-op).
        cursor = conn.execute(
            "SELECT l.seq, l.row_id, v.vector FROM mem_log l LEFT JOIN mem_vectors v ON v.row_id = l.row_id "
            "WHERE l.seq > ? ORDER BY l.seq",
            (self.seq,),
        )
        while rows := cursor.fetchmany(_READ_CHUNK):
            added = [r for r in rows if r[2] is not None]
            removed = [r[1] for r in rows if r[2] is None]
            if added:
                ids = np.fromiter((r[1] for r in added), dtype=np.int64, count=len(added))
                self.index.add(ids, _matrix([r[2] for r in added], self._dimension))
            if removed:
                self.index.remove(np.asarray(removed, dtype=np.int64))
            self.seq = int(rows[-1][0])
            self._unsaved += len(rows)


class _Empty:
    """Stands in for a backend index until :meth:`IndexMirror.open` loads or rebuilds it (nothing is created
    in a remote engine just to be replaced)."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    kind = "empty"
    is_exact = True

    def __len__(self) -> int:
        return 0

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        raise StoreError("the vector index is not open yet")

    def remove(self, ids: np.ndarray) -> int:
        return 0

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        return np.full((n, k), -np.inf, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        return np.empty(0, dtype=np.int64), np.empty((0, self.dimension), dtype=np.float32)

    def save(self, path: Any) -> dict[str, Any]:
        return {}


def _matrix(blobs: list[bytes], dimension: int) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)


def _last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM mem_log").fetchone()[0])


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """Several reads from one consistent state (a deferred read transaction, unless one is open)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")  # read-only: nothing to commit, this just ends the snapshot
