"""VectorMemory: versioned, scoped, searchable memory items with SQLite as truth and FAISS as index.

Writes commit to SQLite first (item versions, their vectors, the change log) and are applied to the
in-memory FAISS index after the commit; searches ask the index for neighbours and SQLite for which of them
are valid at the requested time, in scope and matching the metadata filter (see ``memory._search``).
Nothing is ever deleted by ``update`` or ``delete``: old versions are invalidated, so ``as_of`` searches
and ``history`` see them, and ``rollback(edit_id)`` restores the exact prior state.

Writes may run inside an outer ``db.transaction()`` (a memory write and a KG write committing together);
the index then picks them up from the change log once that transaction has committed.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Literal

import numpy as np

from memory._config import IndexConfig
from memory._lexical import LexicalIndex
from memory._milvus_index import MilvusConfig
from memory._mirror import IndexMirror, PendingChanges
from memory._records import MemoryHit, MemoryItem, MetadataValue
from memory._schema import (
    Filter,
    NewVersion,
    create_tables,
    fetch_vector,
    insert_versions,
    to_item,
)
from memory._search import search as filtered_search
from memory._validate import (
    Draft,
    check_drafts,
    check_item_id,
    check_k,
    check_metadata,
    check_optional_id,
    check_scope,
    check_text,
    check_triple,
    check_vectors,
    from_micros,
    to_micros,
)
from memory._versions import (
    all_versions,
    check_known_scope,
    count_versions,
    current_row,
    invalidate,
    known_scopes,
    rollback_edit,
    version_at,
)
from memory.embedder import Embedder
from tools.base import Database, Scope, Triple, check_time
from tools.errors import EmbedderError, IndexUnavailableError, InvalidInputError, StoreError

__all__ = ["UNSET", "VectorMemory"]

logger = logging.getLogger(__name__)


class _Unset(Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET
"""Marks an ``update`` argument as "keep the current value" (``None`` means "clear it")."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class VectorMemory:
    """Working memory of texts (facts, documents, things a user told) searched by meaning.

    Args:
        db: the database (shared with the knowledge graph); tables ``mem_*`` are created if missing.
        embedder: maps texts to unit vectors; its dimension is fixed for the database's lifetime.
        index_dir: where the FAISS index is saved between runs; ``None`` rebuilds it from the database
            on every open.
        config: index kind and parameters.
        milvus: keep the vectors in this Milvus collection instead of a FAISS index (``index_dir`` and the
            FAISS parts of ``config`` are then unused); SQLite stays the source of truth.
        clock: returns the current timezone-aware time (tests pass a fake one).

    Raises:
        ConfigError: the database holds vectors of another dimension.
        StoreError: the database cannot be read or written, or the memory is opened inside a transaction.

    Example:
        >>> memory = VectorMemory.open(tmp_dir, SentenceTransformerEmbedder())  # doctest: +SKIP
        >>> item = memory.add("Jane Roe is the CEO of Acme.", scope=Scope(user_id="alice"))  # doctest: +SKIP
        >>> memory.search("Who runs Acme?", k=1, scope=Scope(user_id="alice"))[0].item.id == item.id  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        index_dir: Path | None = None,
        config: IndexConfig | None = None,
        clock: Callable[[], datetime] | None = None,
        milvus: MilvusConfig | None = None,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._dimension = int(embedder.dimension)
        self._clock = clock or _utc_now
        self._config = config or IndexConfig()
        self._owns_db = False
        self._closed = False
        with db.read() as conn:
            # Its index must not see rows an enclosing transaction may still roll back.
            if conn.in_transaction:
                raise StoreError("open the vector memory outside a database transaction")
            db_id = create_tables(db, self._dimension)
            self._mirror = IndexMirror.for_backend(self._dimension, self._config, db_id, index_dir, milvus)
            self._mirror.open(conn)
            # Built at the first lexical search only (memories that never search by words never pay for it).
            self._lexical = LexicalIndex(Path(index_dir) if index_dir is not None else None, db_id)

    @classmethod
    def open(
        cls,
        path_dir: Path | str,
        embedder: Embedder,
        config: IndexConfig | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> VectorMemory:
        """The memory stored in ``path_dir`` (``state.sqlite`` and ``index/``), created if missing.

        The database is owned by the returned memory and closed by :meth:`close`.
        """
        root = Path(path_dir)
        db = Database.open(root / "state.sqlite")
        try:
            memory = cls(db, embedder, root / "index", config, clock)
        except BaseException:
            db.close()
            raise
        memory._owns_db = True
        return memory

    # -- writes ---------------------------------------------------------------------------------------------

    def add(
        self,
        text: str,
        *,
        scope: Scope | None = None,
        triple: Triple | None = None,
        source: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        edit_id: str | None = None,
        valid_from: datetime | None = None,
    ) -> MemoryItem:
        """Store a new item (version 1) and return it.

        Args:
            text: 1 to 20,000 characters.
            scope: the user / agent / run it belongs to (default: unscoped).
            triple: the fact it states, if known.
            source: provenance, e.g. ``"user:alice"`` or ``"doc:d00017"``.
            metadata: JSON scalars under 1-64 character keys, filterable in :meth:`search`.
            edit_id: the edit this write belongs to (:meth:`rollback` removes it).
            valid_from: when the fact became true (default: now).

        Raises:
            InvalidInputError: any argument is invalid; nothing is stored.
            StoreError: the database write failed; nothing is stored.
        """
        return self.add_many(
            [text],
            scope=scope,
            triples=[triple],
            sources=[source],
            metadatas=[metadata],
            edit_id=edit_id,
            valid_from=valid_from,
        )[0]

    def add_many(
        self,
        texts: Sequence[str],
        *,
        scope: Scope | None = None,
        scopes: Sequence[Scope] | None = None,
        triples: Sequence[Triple | None] | None = None,
        sources: Sequence[str | None] | None = None,
        metadatas: Sequence[Mapping[str, MetadataValue] | None] | None = None,
        vectors: np.ndarray | None = None,
        edit_id: str | None = None,
        valid_from: datetime | None = None,
        batch_size: int = 1024,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[MemoryItem]:
        """Store many new items: one embedder call, one transaction and one index add per batch.

        All arguments are validated before anything is written. Each batch commits on its own, so if the
        embedder or the database fails in batch ``i`` the batches before it stay stored (inside an outer
        ``db.transaction()`` they all commit or roll back with it).

        Args:
            texts: the item texts.
            scope: one scope for all items, or ``scopes``: one per item.
            triples, sources, metadatas: one per item (``None`` entries allowed), or ``None`` for none.
            vectors: ``(len(texts), dimension)`` precomputed embeddings (normalised here); skips the embedder.
            edit_id, valid_from: as in :meth:`add`, for all items.
            batch_size: items per embedder call and transaction.
            progress: called with ``(done, total)`` after each batch.

        Raises:
            InvalidInputError: any argument is invalid; nothing is stored.
            EmbedderError, StoreError: a batch failed (earlier batches are stored).
        """
        drafts = check_drafts(texts, scope, scopes, triples, sources, metadatas)
        given = None if vectors is None else check_vectors(vectors, self._dimension)
        if given is not None and given.shape[0] != len(drafts):
            raise InvalidInputError(f"vectors has {given.shape[0]} rows for {len(drafts)} texts")
        edit = check_optional_id(edit_id, "edit_id")
        start_us = None if valid_from is None else to_micros(check_time(valid_from, "valid_from"))
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        items: list[MemoryItem] = []
        for lo in range(0, len(drafts), batch_size):
            batch = drafts[lo : lo + batch_size]
            block = given[lo : lo + len(batch)] if given is not None else self._embed([d[0] for d in batch])
            items += self._insert(batch, block, edit, start_us)
            if progress is not None:
                progress(len(items), len(drafts))
        return items

    def update(
        self,
        item_id: str,
        text: str | None = None,
        *,
        triple: Triple | Literal[_Unset.UNSET] | None = UNSET,
        metadata: Mapping[str, MetadataValue] | Literal[_Unset.UNSET] | None = UNSET,
        source: str | Literal[_Unset.UNSET] | None = UNSET,
        edit_id: str | None = None,
    ) -> MemoryItem:
        """Write a new version of an item; the current one is invalidated (kept in history).

        Arguments left out keep their current values; the vector is reused unless ``text`` changes.

        Raises:
            InvalidInputError: nothing to change or an invalid argument; nothing is stored.
            NotFoundError: no such item, or it is deleted.
        """
        item_id = check_item_id(item_id)
        new_text = None if text is None else check_text(text)
        new_triple = triple if triple is UNSET else check_triple(triple)
        new_meta = metadata if metadata is UNSET else check_metadata(metadata)
        new_source = source if source is UNSET else check_optional_id(source, "source")
        edit = check_optional_id(edit_id, "edit_id")
        if new_text is None and new_triple is UNSET and new_meta is UNSET and new_source is UNSET:
            raise InvalidInputError("update() needs a new text, triple, metadata or source")
        vector = None if new_text is None else self._embed([new_text])
        with self._writing() as (conn, pending):
            row = current_row(conn, item_id)
            old = to_item(row)
            at = max(self._now_us(), to_micros(old.valid_from))
            version = NewVersion(
                item_id=item_id,
                version=old.version + 1,
                text=old.text if new_text is None else new_text,
                scope=old.scope,
                triple=old.triple if new_triple is UNSET else new_triple,
                source=old.source if new_source is UNSET else new_source,
                edit_id=edit,
                created_at=at,
                valid_from=at,
                metadata=old.metadata if new_meta is UNSET else new_meta,
            )
            if vector is None:
                vector = np.frombuffer(fetch_vector(conn, row[0]), dtype=np.float32).reshape(1, -1)
            invalidate(conn, row[0], "superseded", at, edit)
            row_ids, pending.last_seq = insert_versions(conn, [version], vector)
            pending.added_ids += row_ids
            pending.added_vectors.append(vector)
        return version.to_item()

    def delete(self, item_id: str, *, edit_id: str | None = None) -> MemoryItem:
        """Soft-delete an item: its current version is invalidated with status ``deleted`` (kept in history).

        Returns:
            The deleted version.

        Raises:
            NotFoundError: no such item, or it is already deleted.
        """
        item_id = check_item_id(item_id)
        edit = check_optional_id(edit_id, "edit_id")
        with self._writing() as (conn, _):
            row = current_row(conn, item_id)
            old = to_item(row)
            at = max(self._now_us(), to_micros(old.valid_from))
            invalidate(conn, row[0], "deleted", at, edit)
        return replace(old, status="deleted", invalid_at=from_micros(at))

    def rollback(self, edit_id: str) -> int:
        """Undo every memory change made under ``edit_id``, exactly.

        Versions it wrote are removed (from SQLite and the index); versions it superseded or deleted are
        made current again.

        Returns:
            The number of versions removed or restored.

        Raises:
            NotFoundError: no memory change was made under ``edit_id``.
            InvalidInputError: a later change (another edit) built on it; roll that back first. Nothing changes.
        """
        edit = check_optional_id(edit_id, "edit_id")
        if edit is None:
            raise InvalidInputError("rollback() needs an edit id")
        with self._writing() as (conn, pending):
            done = rollback_edit(conn, edit)
            pending.removed_ids, pending.last_seq = done.removed, done.last_seq
        removed, restored = len(done.removed), len(done.restored)
        logger.info("rolled back edit %s: %d versions removed, %d restored", edit, removed, restored)
        return removed + restored

    # -- reads ----------------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        scope: Scope | None = None,
        filters: Mapping[str, MetadataValue] | None = None,
        as_of: datetime | None = None,
    ) -> list[MemoryHit]:
        """The ``k`` items most similar to ``query`` that were valid at ``as_of`` (default: now).

        Args:
            query: the text to embed and search for.
            k: 1 to 10,000.
            scope: only items whose scope has every field this one sets.
            filters: only items whose metadata has these keys with equal values of the same JSON type.
            as_of: search the memory as it was at that (timezone-aware) time.

        Returns:
            Hits, best first; ``score`` is cosine similarity (higher is more similar).

        Raises:
            InvalidInputError: an invalid argument.
            UnknownNamespaceError: no item was ever written to ``scope``.
        """
        check_text(query, "query")
        plan = self._plan(k, scope, filters, as_of)
        return self._search(self._embed([query])[0], *plan)

    def search_vector(
        self,
        vector: np.ndarray,
        *,
        k: int = 10,
        scope: Scope | None = None,
        filters: Mapping[str, MetadataValue] | None = None,
        as_of: datetime | None = None,
    ) -> list[MemoryHit]:
        """:meth:`search` with a precomputed ``(dimension,)`` query vector (normalised here)."""
        try:
            matrix = np.asarray(vector).reshape(1, -1)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"the query vector must be numeric: {exc}") from exc
        query = check_vectors(matrix, self._dimension, "query vector")[0]
        return self._search(query, *self._plan(k, scope, filters, as_of))

    def search_lexical(
        self,
        query: str,
        *,
        k: int = 10,
        scope: Scope | None = None,
        filters: Mapping[str, MetadataValue] | None = None,
        as_of: datetime | None = None,
    ) -> list[MemoryHit]:
        """:meth:`search` by words instead of meaning: BM25 over jieba-segmented text (``memory._lexical``).

        Returns:
            Hits sharing at least one term with ``query``, best first; ``score`` is the BM25 score (higher
            is more relevant; unbounded, comparable only within one query).

        Raises:
            InvalidInputError: an invalid argument.
            UnknownNamespaceError: no item was ever written to ``scope``.
            ConfigError: the ``zh`` extra (jieba, bm25s) is not installed.
        """
        check_text(query, "query")
        k, checked, metadata, as_of = self._plan(k, scope, filters, as_of)
        where = Filter(self._time(as_of), checked, metadata)
        with self._reading(sync=False) as conn:
            check_known_scope(conn, checked)
            hits = self._lexical.search(conn, query, k, where)
        return [MemoryHit(to_item(row), score) for row, score in hits]

    def get(self, item_id: str, *, as_of: datetime | None = None) -> MemoryItem:
        """The version of an item valid at ``as_of`` (default: now).

        Raises:
            NotFoundError: no such item, or none of its versions is valid then (e.g. it is deleted).
        """
        item_id = check_item_id(item_id)
        t = self._time(as_of)
        with self._reading(sync=False) as conn:
            return to_item(version_at(conn, item_id, t))

    def history(self, item_id: str) -> list[MemoryItem]:
        """All versions of an item, oldest first.

        Raises:
            NotFoundError: no such item.
        """
        item_id = check_item_id(item_id)
        with self._reading(sync=False) as conn:
            return [to_item(row) for row in all_versions(conn, item_id)]

    def count(self, scope: Scope | None = None, *, as_of: datetime | None = None, versions: bool = False) -> int:
        """Items valid at ``as_of`` (default: now) in ``scope``; with ``versions=True``, all stored versions.

        Raises:
            UnknownNamespaceError: no item was ever written to ``scope``.
        """
        checked = check_scope(scope)
        t = self._time(as_of)
        with self._reading(sync=False) as conn:
            check_known_scope(conn, checked)
            return count_versions(conn, checked, None if versions else t)

    def log_head(self) -> int:
        """The newest change-log sequence number (0 when empty): it moves whenever anyone writes."""
        with self._reading(sync=False) as conn:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM mem_log").fetchone()[0])

    def triples_since(self, seq: int) -> tuple[int, list[Triple]]:
        """The triples of items written after change-log entry ``seq`` (by any process), and the newest seq.

        Lets a process holding derived state (an entity index) catch up with writes of other processes.
        """
        with self._reading(sync=False) as conn:
            rows = conn.execute(
                "SELECT l.seq, i.subject, i.relation, i.object FROM mem_log l JOIN mem_items i ON i.row_id = l.row_id "
                "WHERE l.seq > ? ORDER BY l.seq",
                (int(seq),),
            ).fetchall()
            head = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM mem_log").fetchone()[0])
        triples = [Triple(s, r, o) for _, s, r, o in rows if s and r and o]
        return max(head, int(seq)), triples

    def scopes(self) -> list[Scope]:
        """Every non-empty scope an item was ever written to, sorted."""
        with self._reading(sync=False) as conn:
            return known_scopes(conn)

    # -- the index ------------------------------------------------------------------------------------------

    @property
    def index_size(self) -> int:
        """Vectors in the (caught-up) index: every stored version, current or not."""
        with self._reading(sync=True):
            return len(self._mirror.index)

    @property
    def index_kind(self) -> str:
        """``flat``, ``hnsw`` or ``ivf``: the index structure in use now."""
        with self._reading(sync=True):
            return self._mirror.index.kind

    def flush(self) -> None:
        """Save the index file now (it is also saved every ``save_every`` changes and on close)."""
        with self._reading(sync=True):
            self._mirror.save()

    def close(self) -> None:
        """Save the index and, if :meth:`open` created it, close the database. Idempotent."""
        with self._db.read() as conn:
            if self._closed:
                return
            if not conn.in_transaction:
                try:
                    self._mirror.sync(conn)
                    self._mirror.save()
                except IndexUnavailableError as exc:  # SQLite holds everything; the index catches up on open
                    logger.error("could not save the vector index on close: %s", exc)
            self._closed = True
        self._mirror.close()
        if self._owns_db:
            self._db.close()

    def __enter__(self) -> VectorMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------------

    @contextmanager
    def _reading(self, sync: bool) -> Iterator[sqlite3.Connection]:
        with self._db.read() as conn:
            self._check_open()
            # Inside an outer transaction the log may hold this connection's uncommitted rows: not yet.
            if sync and not conn.in_transaction:
                self._mirror.sync(conn)
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[tuple[sqlite3.Connection, PendingChanges]]:
        """A write transaction; its vector changes reach the index once it has really committed."""
        with self._db.read() as outer:  # hold the lock so no other thread starts a transaction between
            self._check_open()
            nested = outer.in_transaction
            pending = PendingChanges()
            with self._db.transaction() as conn:
                if not nested:
                    self._mirror.sync(conn)  # we hold the write lock: the log cannot move under us
                yield conn, pending
            if not nested:
                self._mirror.apply(pending)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the vector memory is closed")

    def _now_us(self) -> int:
        return to_micros(check_time(self._clock(), "clock()"))

    def _time(self, as_of: datetime | None) -> int:
        return self._now_us() if as_of is None else to_micros(check_time(as_of, "as_of"))

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._embedder.embed(texts)
        try:
            checked = check_vectors(vectors, self._dimension, "embedder output")
        except InvalidInputError as exc:
            raise EmbedderError(f"the embedder returned unusable vectors: {exc}") from exc
        if checked.shape[0] != len(texts):
            raise EmbedderError(f"the embedder returned {checked.shape[0]} vectors for {len(texts)} texts")
        return checked

    def _insert(
        self, drafts: list[Draft], vectors: np.ndarray, edit_id: str | None, valid_from: int | None
    ) -> list[MemoryItem]:
        now = self._now_us()
        versions = [NewVersion.first(d, now=now, valid_from=valid_from, edit_id=edit_id) for d in drafts]
        with self._writing() as (conn, pending):
            row_ids, pending.last_seq = insert_versions(conn, versions, vectors)
            pending.added_ids += row_ids
            pending.added_vectors.append(vectors)
        return [v.to_item() for v in versions]

    def _plan(
        self, k: int, scope: Scope | None, filters: Mapping[str, MetadataValue] | None, as_of: datetime | None
    ) -> tuple[int, Scope | None, dict[str, MetadataValue], datetime | None]:
        """Validate the search arguments (before any embedding work)."""
        check_k(k)
        if as_of is not None:
            check_time(as_of, "as_of")
        return k, check_scope(scope), check_metadata(filters, "filters"), as_of

    def _search(
        self,
        query: np.ndarray,
        k: int,
        scope: Scope | None,
        filters: dict[str, MetadataValue],
        as_of: datetime | None,
    ) -> list[MemoryHit]:
        where = Filter(self._time(as_of), scope, filters)
        with self._reading(sync=True) as conn:
            check_known_scope(conn, scope)
            try:
                hits = filtered_search(conn, self._mirror.index, query, k, where)
            except IndexUnavailableError as exc:
                # a Milvus collection dropped or reset behind our back: rebuild it from SQLite once, retry
                logger.error("vector index unavailable (%s); rebuilding it from the database", exc)
                self._mirror.rebuild(conn)
                hits = filtered_search(conn, self._mirror.index, query, k, where)
        return [MemoryHit(to_item(row), score) for row, score in hits]
