"""Version bookkeeping in SQL: reading versions and scopes, invalidating a version, undoing an edit.

An item's versions form a chain: only the ``active`` one can be superseded (by ``update``) or deleted;
the edit that did so is recorded in ``invalidated_by``. Rolling an edit back removes the versions it wrote
and re-activates the ones it invalidated, which restores the rows exactly as they were, provided no later
edit built on its versions (then it refuses and changes nothing).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from memory._schema import COLUMNS, Filter, delete_versions, scope_clauses
from memory._validate import from_micros
from tools.base import Scope
from tools.errors import InvalidInputError, NotFoundError, UnknownNamespaceError

__all__ = [
    "Rollback",
    "all_versions",
    "check_known_scope",
    "count_versions",
    "current_row",
    "invalidate",
    "known_scopes",
    "require_exists",
    "rollback_edit",
    "version_at",
]


def require_exists(conn: sqlite3.Connection, item_id: str) -> None:
    """Raises: NotFoundError if no version of ``item_id`` was ever stored."""
    if conn.execute("SELECT 1 FROM mem_items WHERE item_id = ? LIMIT 1", (item_id,)).fetchone() is None:
        raise NotFoundError(f"no memory item {item_id}")


def current_row(conn: sqlite3.Connection, item_id: str) -> tuple[Any, ...]:
    """The active version's row (COLUMNS).

    Raises:
        NotFoundError: the item is unknown or deleted.
    """
    sql = f"SELECT {COLUMNS} FROM mem_items WHERE item_id = ? AND status = 'active'"
    row = conn.execute(sql, (item_id,)).fetchone()
    if row is None:
        require_exists(conn, item_id)
        raise NotFoundError(f"memory item {item_id} is deleted")
    return tuple(row)


def version_at(conn: sqlite3.Connection, item_id: str, t: int) -> tuple[Any, ...]:
    """The row of the version of ``item_id`` valid at ``t`` (micros).

    Raises:
        NotFoundError: the item is unknown, or no version of it is valid at ``t``.
    """
    row = conn.execute(
        f"SELECT {COLUMNS} FROM mem_items WHERE item_id = ? AND valid_from <= ? "
        "AND (invalid_at IS NULL OR invalid_at > ?) ORDER BY version DESC LIMIT 1",
        (item_id, t, t),
    ).fetchone()
    if row is None:
        require_exists(conn, item_id)
        raise NotFoundError(f"memory item {item_id} has no version valid at {from_micros(t).isoformat()}")
    return tuple(row)


def all_versions(conn: sqlite3.Connection, item_id: str) -> list[tuple[Any, ...]]:
    """Rows of every version of ``item_id``, oldest first.

    Raises:
        NotFoundError: the item is unknown.
    """
    rows = conn.execute(f"SELECT {COLUMNS} FROM mem_items WHERE item_id = ? ORDER BY version", (item_id,)).fetchall()
    if not rows:
        raise NotFoundError(f"no memory item {item_id}")
    return [tuple(row) for row in rows]


def count_versions(conn: sqlite3.Connection, scope: Scope | None, t: int | None) -> int:
    """Versions in ``scope`` valid at ``t`` (micros), or all stored versions when ``t`` is None."""
    if t is None:
        params: list[Any] = []
        condition = " AND ".join(scope_clauses(scope, "m", params) if scope is not None else []) or "1"
    else:
        condition, params = Filter(t, scope, {}).where()
    return int(conn.execute(f"SELECT COUNT(*) FROM mem_items m WHERE {condition}", params).fetchone()[0])


def known_scopes(conn: sqlite3.Connection) -> list[Scope]:
    """Every non-empty scope an item was ever written to, sorted."""
    rows = conn.execute(
        "SELECT DISTINCT user_id, agent_id, run_id FROM mem_items "
        "WHERE user_id IS NOT NULL OR agent_id IS NOT NULL OR run_id IS NOT NULL"
    ).fetchall()
    return sorted((Scope(*row) for row in rows), key=lambda s: (s.user_id or "", s.agent_id or "", s.run_id or ""))


def check_known_scope(conn: sqlite3.Connection, scope: Scope | None) -> None:
    """Raises: UnknownNamespaceError if ``scope`` sets fields no stored version ever had together."""
    if scope is None or scope.is_empty:
        return
    params: list[Any] = []
    condition = " AND ".join(scope_clauses(scope, "m", params))
    if conn.execute(f"SELECT 1 FROM mem_items m WHERE {condition} LIMIT 1", params).fetchone() is None:
        raise UnknownNamespaceError(f"no memory was ever written to {scope}")


def invalidate(
    conn: sqlite3.Connection, row_id: int, status: Literal["superseded", "deleted"], at: int, edit_id: str | None
) -> None:
    """End the validity of the active version ``row_id`` at ``at`` (micros), recording the edit that did it."""
    conn.execute(
        "UPDATE mem_items SET status = ?, invalid_at = ?, invalidated_by = ? WHERE row_id = ? AND status = 'active'",
        (status, at, edit_id, row_id),
    )


@dataclass(frozen=True)
class Rollback:
    """What undoing an edit did."""

    removed: list[int]  # row ids of the versions it had written (now gone)
    restored: list[int]  # row ids of the versions it had invalidated (active again)
    last_seq: int  # last change-log entry written (the removals)


def rollback_edit(conn: sqlite3.Connection, edit_id: str) -> Rollback:
    """Undo every change made under ``edit_id`` (inside the caller's transaction).

    Raises:
        NotFoundError: no change was made under ``edit_id``.
        InvalidInputError: a later edit superseded or deleted a version it wrote; nothing is changed.
    """
    written = conn.execute(
        "SELECT row_id, item_id, status, invalidated_by FROM mem_items WHERE edit_id = ?", (edit_id,)
    ).fetchall()
    invalidated = [r[0] for r in conn.execute("SELECT row_id FROM mem_items WHERE invalidated_by = ?", (edit_id,))]
    if not written and not invalidated:
        raise NotFoundError(f"no memory change was made under edit {edit_id!r}")
    blocked = sorted({item for _, item, status, by in written if status != "active" and by != edit_id})
    if blocked:
        raise InvalidInputError(
            f"edit {edit_id!r} cannot be rolled back: later changes to {', '.join(blocked)} depend on it "
            "(roll those back first)"
        )
    removed = [r[0] for r in written]
    restored = sorted(set(invalidated) - set(removed))
    last_seq = delete_versions(conn, removed)
    conn.executemany(
        "UPDATE mem_items SET status = 'active', invalid_at = NULL, invalidated_by = NULL WHERE row_id = ?",
        [(row_id,) for row_id in restored],
    )
    return Rollback(removed, restored, last_seq)
