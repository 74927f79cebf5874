"""The vector memory's SQLite tables and the SQL that reads and writes item versions.

Tables (all prefixed ``mem_``; times are integer microseconds since the Unix epoch, UTC):

- ``mem_items``: one row per item version; ``row_id`` (AUTOINCREMENT, never reused) is also the vector's
  FAISS id. ``invalidated_by`` is the edit that superseded or deleted the version, for rollback.
- ``mem_vectors``: the float32 vector of each version, apart so scans of ``mem_items`` stay small.
- ``mem_meta``: one row per metadata key, indexed, so very selective metadata filters are cheap.
- ``mem_log``: the change log. Every vector added to or removed from the store appends its ``row_id``;
  an index that has applied entries up to ``seq`` catches up by reading the rest (an entry whose row still
  exists is an add, one whose row is gone a removal).
- ``mem_config``: the embedding dimension and a random id naming this database (index files record it).
"""

from __future__ import annotations

import functools
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memory._records import MemoryItem, MetadataValue
from memory._validate import Draft, from_micros, metadata_matches, value_kind
from tools.base import Scope, Triple
from tools.errors import ConfigError

if TYPE_CHECKING:
    import sqlite3

    import numpy as np

    from tools.base import Database

_DDL = [
    """CREATE TABLE IF NOT EXISTS mem_items (
        row_id INTEGER PRIMARY KEY AUTOINCREMENT,
        item_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        text TEXT NOT NULL,
        user_id TEXT, agent_id TEXT, run_id TEXT,
        subject TEXT, relation TEXT, object TEXT,
        source TEXT,
        edit_id TEXT,
        created_at INTEGER NOT NULL,
        valid_from INTEGER NOT NULL,
        invalid_at INTEGER,
        status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'deleted')),
        invalidated_by TEXT,
        metadata TEXT NOT NULL,
        UNIQUE (item_id, version)
    )""",
    "CREATE INDEX IF NOT EXISTS mem_items_user ON mem_items(user_id) WHERE user_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS mem_items_agent ON mem_items(agent_id) WHERE agent_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS mem_items_run ON mem_items(run_id) WHERE run_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS mem_items_edit ON mem_items(edit_id) WHERE edit_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS mem_items_inval ON mem_items(invalidated_by) WHERE invalidated_by IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS mem_items_valid ON mem_items(valid_from)",
    "CREATE TABLE IF NOT EXISTS mem_vectors (row_id INTEGER PRIMARY KEY, vector BLOB NOT NULL)",
    # value has no declared type, so it keeps the stored class: 1 = 1.0 numerically, '1' is text.
    """CREATE TABLE IF NOT EXISTS mem_meta (
        key TEXT NOT NULL, kind TEXT NOT NULL, value, row_id INTEGER NOT NULL,
        PRIMARY KEY (key, kind, value, row_id)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS mem_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, row_id INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mem_config (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]

COLUMNS = (
    "row_id, item_id, version, text, user_id, agent_id, run_id, subject, relation, object, source, edit_id, "
    "created_at, valid_from, invalid_at, status, metadata"
)
# Positions in a row selected with COLUMNS.
ROW_ID, ITEM_ID, VERSION, USER, AGENT, RUN, EDIT, VALID_FROM, INVALID_AT, STATUS, METADATA = (
    0,
    1,
    2,
    4,
    5,
    6,
    11,
    13,
    14,
    15,
    16,
)
_IN_CHUNK = 2_000  # row ids per "IN (...)" query, well under SQLite's variable limit


def create_tables(db: Database, dimension: int) -> str:
    """Create the tables if needed; returns the database id.

    Raises:
        ConfigError: the database holds vectors of another dimension than the embedder's.
    """
    with db.transaction() as conn:
        for statement in _DDL:
            conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO mem_config VALUES ('db_id', ?)", (uuid.uuid4().hex,))
        conn.execute("INSERT OR IGNORE INTO mem_config VALUES ('dimension', ?)", (str(dimension),))
        config = dict(conn.execute("SELECT key, value FROM mem_config").fetchall())
    if int(config["dimension"]) != dimension:
        raise ConfigError(
            f"{db.path} holds {config['dimension']}-dimensional vectors but the embedder makes {dimension}"
        )
    return str(config["db_id"])


@dataclass(frozen=True, kw_only=True)
class NewVersion:
    """A version about to be inserted (validated; ten fields, so built by keyword or :meth:`first`)."""

    item_id: str
    version: int
    text: str
    scope: Scope
    triple: Triple | None
    source: str | None
    edit_id: str | None
    created_at: int
    valid_from: int
    metadata: Mapping[str, MetadataValue]

    @classmethod
    def first(cls, draft: Draft, *, now: int, valid_from: int | None, edit_id: str | None) -> NewVersion:
        """Version 1 of a new item from a validated draft, under a fresh id."""
        return cls(
            item_id="m-" + secrets.token_hex(8),
            version=1,
            text=draft.text,
            scope=draft.scope,
            triple=draft.triple,
            source=draft.source,
            edit_id=edit_id,
            created_at=now,
            valid_from=now if valid_from is None else valid_from,
            metadata=draft.metadata,
        )

    def to_item(self) -> MemoryItem:
        """The item as it reads back once inserted."""
        return MemoryItem(
            id=self.item_id,
            version=self.version,
            text=self.text,
            scope=self.scope,
            triple=self.triple,
            source=self.source,
            edit_id=self.edit_id,
            created_at=from_micros(self.created_at),
            valid_from=from_micros(self.valid_from),
            invalid_at=None,
            status="active",
            metadata=dict(self.metadata),
        )


def next_id(conn: sqlite3.Connection, table: str, column: str) -> int:
    """The id AUTOINCREMENT would give the next row of ``table`` (we assign ids explicitly to know them)."""
    row = conn.execute(
        f"SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
        f"COALESCE((SELECT MAX({column}) FROM {table}), 0))",
        (table,),
    ).fetchone()
    return int(row[0]) + 1


def insert_versions(
    conn: sqlite3.Connection, versions: Sequence[NewVersion], vectors: np.ndarray
) -> tuple[list[int], int]:
    """Insert ``versions`` with their vectors and log them; returns their row ids and the last log seq."""
    first = next_id(conn, "mem_items", "row_id")
    row_ids = list(range(first, first + len(versions)))
    conn.executemany(
        f"INSERT INTO mem_items ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'active', ?)",
        [
            (
                row_id,
                v.item_id,
                v.version,
                v.text,
                v.scope.user_id,
                v.scope.agent_id,
                v.scope.run_id,
                *(_triple_columns(v.triple)),
                v.source,
                v.edit_id,
                v.created_at,
                v.valid_from,
                json.dumps(v.metadata, sort_keys=True, ensure_ascii=False, allow_nan=False),
            )
            for row_id, v in zip(row_ids, versions, strict=True)
        ],
    )
    conn.executemany(
        "INSERT INTO mem_vectors (row_id, vector) VALUES (?, ?)",
        [(row_id, vectors[i].tobytes()) for i, row_id in enumerate(row_ids)],
    )
    meta = [
        (key, value_kind(value), int(value) if isinstance(value, bool) else value, row_id)
        for row_id, v in zip(row_ids, versions, strict=True)
        for key, value in v.metadata.items()
    ]
    if meta:
        conn.executemany("INSERT INTO mem_meta (key, kind, value, row_id) VALUES (?, ?, ?, ?)", meta)
    return row_ids, log(conn, row_ids)


def log(conn: sqlite3.Connection, row_ids: Sequence[int]) -> int:
    """Append change-log entries for ``row_ids``; returns the last seq (0 if none)."""
    if not row_ids:
        return 0
    first = next_id(conn, "mem_log", "seq")
    conn.executemany("INSERT INTO mem_log (seq, row_id) VALUES (?, ?)", enumerate(row_ids, start=first))
    return first + len(row_ids) - 1


def delete_versions(conn: sqlite3.Connection, row_ids: Sequence[int]) -> int:
    """Remove versions entirely (rollback only) and log the removals; returns the last log seq."""
    for chunk in _chunks(row_ids):
        marks = _marks(chunk)
        # mem_meta is keyed by (key, kind, value, row_id): delete by full key, not by a scan on row_id.
        meta = [
            (key, value_kind(value), int(value) if isinstance(value, bool) else value, row_id)
            for row_id, raw in conn.execute(f"SELECT row_id, metadata FROM mem_items WHERE row_id IN ({marks})", chunk)
            for key, value in json.loads(raw).items()
        ]
        conn.executemany("DELETE FROM mem_meta WHERE key = ? AND kind = ? AND value = ? AND row_id = ?", meta)
        conn.execute(f"DELETE FROM mem_items WHERE row_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM mem_vectors WHERE row_id IN ({marks})", chunk)
    return log(conn, row_ids)


def fetch_rows(conn: sqlite3.Connection, row_ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
    """Rows (COLUMNS) by row id; ids with no row are left out."""
    out: dict[int, tuple[Any, ...]] = {}
    for chunk in _chunks(list(row_ids)):
        for row in conn.execute(f"SELECT {COLUMNS} FROM mem_items WHERE row_id IN ({_marks(chunk)})", chunk):
            out[row[ROW_ID]] = row
    return out


def fetch_vector(conn: sqlite3.Connection, row_id: int) -> bytes:
    return bytes(conn.execute("SELECT vector FROM mem_vectors WHERE row_id = ?", (row_id,)).fetchone()[0])


@functools.lru_cache(maxsize=4096)
def _scope(user_id: str | None, agent_id: str | None, run_id: str | None) -> Scope:
    # Few distinct scopes recur in every search result: validate each once (Scope is immutable).
    return Scope(user_id, agent_id, run_id)


def to_item(row: Sequence[Any]) -> MemoryItem:
    """A :class:`MemoryItem` from a row selected with COLUMNS."""
    subject, relation, obj = row[7], row[8], row[9]
    return MemoryItem(
        id=row[ITEM_ID],
        version=row[VERSION],
        text=row[3],
        scope=_scope(row[USER], row[AGENT], row[RUN]),
        triple=Triple(subject, relation, obj) if subject is not None else None,
        source=row[10],
        edit_id=row[EDIT],
        created_at=from_micros(row[12]),
        valid_from=from_micros(row[VALID_FROM]),
        invalid_at=None if row[INVALID_AT] is None else from_micros(row[INVALID_AT]),
        status=row[STATUS],
        metadata={} if row[METADATA] == "{}" else json.loads(row[METADATA]),
    )


@dataclass(frozen=True)
class Filter:
    """Which versions a search or count may return: valid at ``t`` (micros), in ``scope``, matching ``metadata``."""

    t: int
    scope: Scope | None
    metadata: Mapping[str, MetadataValue]

    def accepts(self, row: Sequence[Any]) -> bool:
        """The same test as :meth:`where`, on a fetched row."""
        if row[VALID_FROM] > self.t or (row[INVALID_AT] is not None and self.t >= row[INVALID_AT]):
            return False
        if self.scope is not None:
            for position, want in zip((USER, AGENT, RUN), _scope_fields(self.scope), strict=True):
                if want is not None and row[position] != want:
                    return False
        return not self.metadata or metadata_matches(json.loads(row[METADATA]), self.metadata)

    @property
    def selective(self) -> bool:
        """Whether anything but validity in time narrows the candidates."""
        return bool(self.metadata) or (self.scope is not None and not self.scope.is_empty)

    def where(self, alias: str = "m") -> tuple[str, list[Any]]:
        """An SQL condition on ``mem_items AS alias`` and its parameters."""
        clauses = [f"{alias}.valid_from <= ?", f"({alias}.invalid_at IS NULL OR {alias}.invalid_at > ?)"]
        params: list[Any] = [self.t, self.t]
        if self.scope is not None:
            clauses += scope_clauses(self.scope, alias, params)
        for key, value in self.metadata.items():
            clauses.append(f"{alias}.row_id IN (SELECT row_id FROM mem_meta WHERE key = ? AND kind = ? AND value = ?)")
            params += [key, value_kind(value), int(value) if isinstance(value, bool) else value]
        return " AND ".join(clauses), params


def scope_clauses(scope: Scope, alias: str, params: list[Any]) -> list[str]:
    """Equality conditions for the fields ``scope`` sets (appending their values to ``params``)."""
    clauses = []
    for column, want in zip(("user_id", "agent_id", "run_id"), _scope_fields(scope), strict=True):
        if want is not None:
            clauses.append(f"{alias}.{column} = ?")
            params.append(want)
    return clauses


def _scope_fields(scope: Scope) -> tuple[str | None, str | None, str | None]:
    return scope.user_id, scope.agent_id, scope.run_id


def _triple_columns(triple: Triple | None) -> tuple[str | None, str | None, str | None]:
    return (None, None, None) if triple is None else (triple.subject, triple.relation, triple.object)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield list(ids[start : start + _IN_CHUNK])


def _marks(chunk: Sequence[int]) -> str:
    return ", ".join("?" * len(chunk))
