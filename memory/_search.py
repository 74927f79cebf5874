"""Filtered nearest-neighbour search: the ANN index proposes, SQLite decides what may be returned.

The index holds every version ever written (time travel needs them), so a hit is kept only if its row is
valid at the query time, in scope and matches the metadata filter. The plan:

1. The index is asked for a few more than ``k`` neighbours (four times ``k`` under a scope or metadata
   filter); if enough of them are accepted, that is the answer.
2. If not, and a scope or metadata filter leaves at most ``EXACT_MAX`` candidates, those are scored
   exactly: their vectors are read from SQLite and multiplied with the query.
3. Otherwise the index is asked for four times as many neighbours each round, up to ``FETCH_CAP``; if that
   still does not fill ``k`` (a filter matching few of the nearest vectors, or a time far in the past) the
   candidates are scored exactly after all. So a filter never loses results, however selective.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from memory._index import VectorIndex
from memory._schema import Filter, fetch_rows, scope_clauses
from memory._validate import value_kind

__all__ = ["EXACT_MAX", "FETCH_CAP", "search"]

EXACT_MAX = 2_048  # filtered searches with at most this many candidates skip the ANN index
FETCH_CAP = 2_048  # widest ANN over-fetch (also faiss's GPU limit) before the exact fallback
_MARGIN = 6  # extra neighbours fetched for superseded versions of the nearest items
_EXACT_CHUNK = 8_192  # vectors scored per matrix product in the exact path


def search(
    conn: sqlite3.Connection, index: VectorIndex, query: np.ndarray, k: int, where: Filter
) -> list[tuple[tuple[object, ...], float]]:
    """The ``k`` best ``(row, score)`` pairs that ``where`` accepts, best first.

    Args:
        conn: the database connection (the caller holds its lock).
        index: the caught-up vector index.
        query: a ``(d,)`` float32 unit vector.
        k: how many hits at most.
        where: validity time, scope and metadata filter.
    """
    total = len(index)
    fetch = 4 * k + _MARGIN if where.selective else k + _MARGIN
    first = True
    while total:
        fetch = min(fetch, FETCH_CAP, total)
        scores, ids = index.search(query.reshape(1, -1), fetch)
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        rows = fetch_rows(conn, (i for i, _ in found))
        hits = [(rows[i], s) for i, s in found if i in rows and where.accepts(rows[i])]
        if len(hits) >= k or (fetch >= total and index.is_exact):
            return hits[:k]
        if fetch >= total or fetch >= FETCH_CAP:
            break
        # Asked only now, so a filter that matches most items never pays for the count.
        if first and where.selective and _few_candidates(conn, where):
            break
        first = False
        fetch *= 4
    return _exact(conn, query, k, where)


def _few_candidates(conn: sqlite3.Connection, where: Filter) -> bool:
    """Whether some scope or metadata condition alone matches at most ``EXACT_MAX`` versions.

    Each condition is counted on its own index with a LIMIT, so this costs little however many items
    match; the exact search then applies all conditions (and validity in time) together.
    """
    limit = EXACT_MAX + 1
    counts = [
        conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM mem_meta WHERE key = ? AND kind = ? AND value = ? LIMIT ?)",
            (key, value_kind(value), int(value) if isinstance(value, bool) else value, limit),
        ).fetchone()[0]
        for key, value in where.metadata.items()
    ]
    if where.scope is not None and not where.scope.is_empty:
        params: list[object] = []
        condition = " AND ".join(scope_clauses(where.scope, "m", params))
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM mem_items m WHERE {condition} LIMIT ?)"
        counts.append(conn.execute(sql, [*params, limit]).fetchone()[0])
    return min(counts, default=limit) <= EXACT_MAX


def _exact(
    conn: sqlite3.Connection, query: np.ndarray, k: int, where: Filter
) -> list[tuple[tuple[object, ...], float]]:
    """Score every candidate's stored vector; keeps a running top k so memory stays bounded."""
    condition, params = where.where()
    cursor = conn.execute(
        f"SELECT v.row_id, v.vector FROM mem_items m JOIN mem_vectors v ON v.row_id = m.row_id WHERE {condition}",
        params,
    )
    best_ids = np.empty(0, dtype=np.int64)
    best_scores = np.empty(0, dtype=np.float32)
    while batch := cursor.fetchmany(_EXACT_CHUNK):
        ids = np.fromiter((row[0] for row in batch), dtype=np.int64, count=len(batch))
        vectors = np.frombuffer(b"".join(row[1] for row in batch), dtype=np.float32).reshape(len(batch), -1)
        best_ids = np.concatenate([best_ids, ids])
        best_scores = np.concatenate([best_scores, vectors @ query])
        if best_ids.size > k:
            keep = np.argpartition(-best_scores, k - 1)[:k]
            best_ids, best_scores = best_ids[keep], best_scores[keep]
    order = np.argsort(-best_scores, kind="stable")
    rows = fetch_rows(conn, best_ids[order].tolist())
    return [(rows[int(best_ids[i])], float(best_scores[i])) for i in order if int(best_ids[i]) in rows]
