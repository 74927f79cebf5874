"""The edit log, the quarantine and the consolidation queue: SQLite tables in the working memory's database.

Tables (prefixed ``tell_``; times are integer microseconds since the Unix epoch, UTC; triples are JSON lists
of ``[subject, relation, object]``):

- ``tell_edits``: one row per applied edit (id, user, time, namespace, text, triples, augmented and
  superseded facts, status ``applied`` | ``rolled_back``, parametric journal ids);
- ``tell_edit_entities``: the normalised names each edit touched (subjects and objects), for history;
- ``tell_quarantine``: statements held for review (``pending`` | ``approved`` | ``rejected``);
- ``tell_queue``: parametric edit requests waiting for consolidation into the weights.

Writes run inside the caller's ``db.transaction()`` so that a log row commits with the KG and memory writes
it describes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from agent.tell._records import EditRecord, QuarantineItem
from kg import normalize_mention
from memory import Database, MetadataValue, Triple
from tools.errors import UnknownEditError

__all__ = ["EditLog", "from_json_triples", "to_json_triples"]

_DDL = [
    """CREATE TABLE IF NOT EXISTS tell_edits (
        edit_id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        text TEXT NOT NULL,
        triples TEXT NOT NULL,
        augmented TEXT NOT NULL,
        superseded TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('applied', 'rolled_back')),
        journal_ids TEXT NOT NULL,
        quarantine_id TEXT,
        closed_at INTEGER,
        closed_by TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS tell_edit_entities (
        edit_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (edit_id, name)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS tell_edit_entities_name ON tell_edit_entities(name)",
    """CREATE TABLE IF NOT EXISTS tell_quarantine (
        id TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        namespace TEXT NOT NULL,
        text TEXT NOT NULL,
        triples TEXT NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
        reviewed_by TEXT,
        reviewed_at INTEGER,
        edit_id TEXT,
        metadata TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS tell_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        edit_id TEXT NOT NULL,
        request TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
        journal_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS tell_queue_edit ON tell_queue(edit_id)",
]
_EDIT_COLUMNS = "edit_id, user, created_at, namespace, text, triples, augmented, superseded, status, journal_ids"
_QUARANTINE_COLUMNS = "id, user, created_at, namespace, text, triples, reason, status, reviewed_by, edit_id, metadata"


def to_json_triples(triples: Iterable[Triple]) -> str:
    return json.dumps([[t.subject, t.relation, t.object] for t in triples], ensure_ascii=False)


def from_json_triples(text: str) -> tuple[Triple, ...]:
    return tuple(Triple(s, r, o) for s, r, o in json.loads(text))


def _micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _time(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


class EditLog:
    """The tell pipeline's tables in ``db`` (created if missing)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        with db.transaction() as conn:
            for statement in _DDL:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(tell_quarantine)")}
            if "metadata" not in columns:  # a home made before held facts kept their metadata
                conn.execute("ALTER TABLE tell_quarantine ADD COLUMN metadata TEXT")

    # -- edits -----------------------------------------------------------------------------------------

    def exists(self, edit_id: str) -> bool:
        with self._db.read() as conn:
            row = conn.execute("SELECT 1 FROM tell_edits WHERE edit_id = ?", (edit_id,)).fetchone()
        return row is not None

    def add_edit(
        self,
        *,
        edit_id: str,
        user: str,
        at: datetime,
        namespace: str,
        text: str,
        triples: Sequence[Triple],
        augmented: Sequence[Triple] = (),
        superseded: Sequence[Triple] = (),
        journal_ids: Sequence[str] = (),
        quarantine_id: str | None = None,
        index_names: bool = True,
    ) -> None:
        """Record an applied edit and the names it touched (call inside the edit's transaction; by keyword).

        ``index_names=False`` (bulk loads) leaves the names out of the history index: a subject's history
        then lists the load's assertions one by one instead of the whole load.
        """
        names = (
            {normalize_mention(n) for t in (*triples, *augmented) for n in (t.subject, t.object)}
            if index_names
            else set()
        )
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO tell_edits (edit_id, user, created_at, namespace, text, triples, augmented, superseded, "
                "status, journal_ids, quarantine_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'applied', ?, ?)",
                (
                    edit_id,
                    user,
                    _micros(at),
                    namespace,
                    text,
                    to_json_triples(triples),
                    to_json_triples(augmented),
                    to_json_triples(superseded),
                    json.dumps(list(journal_ids)),
                    quarantine_id,
                ),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO tell_edit_entities VALUES (?, ?)", [(edit_id, n) for n in sorted(names) if n]
            )

    def extend_edit(self, edit_id: str, triples: Sequence[Triple]) -> None:
        """Append ``triples`` to an applied edit's facts (a bulk load's later batch; inside its transaction).

        Raises:
            UnknownEditError: no such edit.
        """
        record = self.edit(edit_id)
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE tell_edits SET triples = ? WHERE edit_id = ?",
                (to_json_triples([*record.triples, *triples]), edit_id),
            )

    def edit(self, edit_id: str) -> EditRecord:
        """The logged edit.

        Raises:
            UnknownEditError: no edit has this id.
        """
        with self._db.read() as conn:
            row = conn.execute(f"SELECT {_EDIT_COLUMNS} FROM tell_edits WHERE edit_id = ?", (edit_id,)).fetchone()
        if row is None:
            raise UnknownEditError(f"no edit {edit_id!r} (see history for the ids of told edits)")
        return _edit_record(row)

    def close_edit(self, edit_id: str, by: str, at: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE tell_edits SET status = 'rolled_back', closed_at = ?, closed_by = ? WHERE edit_id = ?",
                (_micros(at), by, edit_id),
            )

    def set_journal_ids(self, edit_id: str, journal_ids: Sequence[str]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE tell_edits SET journal_ids = ? WHERE edit_id = ?", (json.dumps(list(journal_ids)), edit_id)
            )

    def recent(self, namespaces: Sequence[str], limit: int, offset: int = 0) -> list[EditRecord]:
        """Edits in ``namespaces``, newest first: ``limit`` of them after skipping ``offset``."""
        if not namespaces:
            return []
        marks = ", ".join("?" for _ in namespaces)
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_EDIT_COLUMNS} FROM tell_edits WHERE namespace IN ({marks}) "
                "ORDER BY created_at DESC, edit_id LIMIT ? OFFSET ?",
                (*namespaces, int(limit), int(offset)),
            ).fetchall()
        return [_edit_record(row) for row in rows]

    def edits_touching(self, name: str) -> list[EditRecord]:
        """Edits whose facts name ``name`` (normalised), newest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {', '.join('e.' + c.strip() for c in _EDIT_COLUMNS.split(','))} FROM tell_edits e "
                "JOIN tell_edit_entities n ON n.edit_id = e.edit_id WHERE n.name = ? ORDER BY e.created_at DESC",
                (normalize_mention(name),),
            ).fetchall()
        return [_edit_record(row) for row in rows]

    # -- quarantine ------------------------------------------------------------------------------------

    def add_quarantine(
        self,
        item_id: str,
        user: str,
        at: datetime,
        namespace: str,
        text: str,
        triples: Sequence[Triple],
        reason: str,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> None:
        """Hold a statement for review; ``metadata`` (posted with a fact) is kept for when it is approved."""
        meta = json.dumps(dict(metadata), ensure_ascii=False) if metadata else None
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO tell_quarantine "
                "(id, user, created_at, namespace, text, triples, reason, status, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (item_id, user, _micros(at), namespace, text, to_json_triples(triples), reason, meta),
            )

    def quarantined(
        self, status: Literal["pending", "approved", "rejected"] | None = "pending"
    ) -> list[QuarantineItem]:
        """Quarantined statements with ``status`` (all when ``None``), oldest first."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        with self._db.read() as conn:
            rows = conn.execute(
                f"SELECT {_QUARANTINE_COLUMNS} FROM tell_quarantine {where} ORDER BY created_at, id", args
            ).fetchall()
        return [_quarantine_item(row) for row in rows]

    def quarantine_item(self, item_id: str) -> QuarantineItem:
        """Raises: UnknownEditError when no quarantined statement has this id."""
        with self._db.read() as conn:
            row = conn.execute(f"SELECT {_QUARANTINE_COLUMNS} FROM tell_quarantine WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise UnknownEditError(f"no quarantined statement {item_id!r}")
        return _quarantine_item(row)

    def review(self, item_id: str, approved: bool, by: str, at: datetime, edit_id: str | None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE tell_quarantine SET status = ?, reviewed_by = ?, reviewed_at = ?, edit_id = ? WHERE id = ?",
                ("approved" if approved else "rejected", by, _micros(at), edit_id, item_id),
            )

    # -- consolidation queue ---------------------------------------------------------------------------

    def enqueue(self, edit_id: str, requests: Sequence[dict[str, Any]]) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO tell_queue (edit_id, request, status) VALUES (?, ?, 'pending')",
                [(edit_id, json.dumps(r, ensure_ascii=False)) for r in requests],
            )

    def pending(self, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
        """``(seq, edit_id, request)`` of queued requests of applied edits, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT q.seq, q.edit_id, q.request FROM tell_queue q JOIN tell_edits e ON e.edit_id = q.edit_id "
                "WHERE q.status = 'pending' AND e.status = 'applied' ORDER BY q.seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [(int(seq), str(edit), json.loads(req)) for seq, edit, req in rows]

    def mark_done(self, seqs: Sequence[int], journal_id: str) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "UPDATE tell_queue SET status = 'done', journal_id = ? WHERE seq = ?", [(journal_id, s) for s in seqs]
            )

    def batch_of(self, journal_id: str) -> list[str]:
        """Edit ids whose queued requests went into the consolidation ``journal_id``."""
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT edit_id FROM tell_queue WHERE journal_id = ? ORDER BY edit_id", (journal_id,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def requeue(self, journal_id: str) -> None:
        """Put the requests of a rolled-back consolidation back in the queue."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE tell_queue SET status = 'pending', journal_id = NULL WHERE journal_id = ?", (journal_id,)
            )

    def drop_queued(self, edit_id: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM tell_queue WHERE edit_id = ? AND status = 'pending'", (edit_id,))


def _edit_record(row: sqlite3.Row | tuple[Any, ...]) -> EditRecord:
    edit_id, user, created, namespace, text, triples, augmented, superseded, status, journal = row
    return EditRecord(
        edit_id=edit_id,
        origin="tell",
        who=f"user:{user}",
        created_at=_time(created),
        namespace=namespace,
        text=text,
        triples=from_json_triples(triples),
        augmented=from_json_triples(augmented),
        superseded=from_json_triples(superseded),
        status=status,
        journal_ids=tuple(json.loads(journal)),
    )


def _quarantine_item(row: sqlite3.Row | tuple[Any, ...]) -> QuarantineItem:
    item_id, user, created, namespace, text, triples, reason, status, reviewed_by, edit_id, meta = row
    return QuarantineItem(
        id=item_id,
        user=user,
        created_at=_time(created),
        namespace=namespace,
        text=text,
        triples=from_json_triples(triples),
        reason=reason,
        status=status,
        reviewed_by=reviewed_by,
        edit_id=edit_id,
        metadata=json.loads(meta) if meta else {},
    )
