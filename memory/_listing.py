"""Browsing the vector memory page by page: items valid at a time, by namespace, subject and relation.

A read-only listing straight from SQLite (no embedding, no index): what a UI pages through. It reads the
same ``mem_items`` rows as :class:`~memory.VectorMemory` and needs only the shared :class:`Database`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from memory._records import MemoryItem
from memory._schema import COLUMNS, to_item
from memory._validate import to_micros
from tools.base import Database, check_time
from tools.errors import InvalidInputError

__all__ = ["ItemPage", "list_items"]

MAX_PAGE = 500


@dataclass(frozen=True)
class ItemPage:
    """One page of a listing: ``items`` newest first, and ``total`` matching items over all pages."""

    items: tuple[MemoryItem, ...]
    total: int


def list_items(
    db: Database,
    namespaces: Sequence[str],
    *,
    subject: str | None = None,
    relation: str | None = None,
    as_of: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> ItemPage:
    """Items valid at ``as_of`` (default now) in ``namespaces`` (their ``agent_id``), newest first.

    Args:
        db: the database the vector memory lives in.
        namespaces: the namespaces to list (at least one).
        subject: only items whose triple has this subject (case-insensitive, exact); ``None``: any.
        relation: only items whose triple has this relation id; ``None``: any.
        as_of: a timezone-aware time.
        limit: page size, 1 to 500.
        offset: items to skip (>= 0).

    Raises:
        InvalidInputError: no namespace, a bad page, or a naive ``as_of``; nothing is read.
    """
    if not namespaces:
        raise InvalidInputError("list at least one namespace")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInputError(f"limit must be 1..{MAX_PAGE} and offset >= 0, got {limit}, {offset}")
    t = to_micros(check_time(as_of, "as_of") if as_of is not None else datetime.now(UTC))
    clauses = [
        "valid_from <= ?",
        "(invalid_at IS NULL OR invalid_at > ?)",
        f"agent_id IN ({', '.join('?' * len(namespaces))})",
    ]
    params: list[object] = [t, t, *namespaces]
    if subject is not None:
        clauses.append("subject = ? COLLATE NOCASE")
        params.append(subject)
    if relation is not None:
        clauses.append("relation = ?")
        params.append(relation)
    where = " AND ".join(clauses)
    with db.read() as conn:
        total = int(conn.execute(f"SELECT COUNT(*) FROM mem_items WHERE {where}", params).fetchone()[0])
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM mem_items WHERE {where} ORDER BY row_id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
    return ItemPage(items=tuple(to_item(r) for r in rows), total=total)
