"""The embedded :class:`~kg.TripleStore`: quads as integer rows in the shared SQLite file.

Tables (created if missing)::

    kg_terms(id INTEGER PRIMARY KEY, term TEXT UNIQUE)      -- canonical N-Triples form, rows never change
    kg_quads(g, s, p, o INTEGER, PRIMARY KEY (g, s, p, o))  -- WITHOUT ROWID, plus indexes (s,p,o) (p,o,s) (o,s,p)

Every pattern with any bound positions is one indexed lookup. Writes go through ``Database.transaction()``,
so an outer transaction (a memory item and its KG assertion) commits or rolls back both. SPARQL runs in
rdflib's engine over :class:`kg._sqlite_rdf.SQLiteRDFStore`, an rdflib ``Store`` reading these tables,
inside one read snapshot.

The only cache is term text -> id, and it only learns ids that are committed: term rows are never deleted or
changed, so such an id stays right for every process, while an id inserted by a transaction that may still
roll back (and whose number SQLite could then reuse) is never cached.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rdflib.term import Identifier, Node, URIRef

from kg._store import Quad
from kg._store_support import check_bindings, check_pattern, check_quads, decode_term, encode_term, prepare_query
from tools.base import Database

if TYPE_CHECKING:
    from kg._sparql_eval import QuadDataset

__all__ = ["SQLiteTripleStore"]

logger = logging.getLogger(__name__)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kg_terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS kg_quads (g INTEGER NOT NULL, s INTEGER NOT NULL, p INTEGER NOT NULL, "
    "o INTEGER NOT NULL, PRIMARY KEY (g, s, p, o)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS kg_quads_spo ON kg_quads (s, p, o)",
    "CREATE INDEX IF NOT EXISTS kg_quads_pos ON kg_quads (p, o, s)",
    "CREATE INDEX IF NOT EXISTS kg_quads_osp ON kg_quads (o, s, p)",
)
_CHUNK = 500  # host parameters per IN (...) lookup, well under SQLite's limit
_CACHE_MAX = 1_000_000  # term ids kept; the cache is cleared (not evicted piecemeal) past this
_TERMS_JOIN = "JOIN kg_terms ts ON ts.id = q.s JOIN kg_terms tp ON tp.id = q.p JOIN kg_terms tob ON tob.id = q.o"


class SQLiteTripleStore:
    """A :class:`~kg.TripleStore` in a :class:`~memory.Database` (shared with the vector memory).

    Args:
        db: the open database; the store creates its ``kg_`` tables in it and does not close it.

    Example:
        >>> from rdflib import URIRef
        >>> store = SQLiteTripleStore(Database.open(":memory:"))
        >>> store.add([(URIRef("urn:s"), URIRef("urn:p"), URIRef("urn:o"), URIRef("urn:g"))])
        >>> [q[2] for q in store.quads(subject=URIRef("urn:s"))]
        [rdflib.term.URIRef('urn:o')]
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._owns_db = False
        self._ids: dict[str, int] = {}
        self._committed_reads = False  # True while query() reads inside its own snapshot
        self._dataset: QuadDataset | None = None
        with db.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    @classmethod
    def open(cls, path: str | Path) -> SQLiteTripleStore:
        """Open a store on its own database file; :meth:`close` closes the file.

        Raises:
            StoreError: the file cannot be opened as a SQLite database.
        """
        store = cls(Database.open(path))
        store._owns_db = True
        return store

    @property
    def db(self) -> Database:
        return self._db

    # -- term ids -------------------------------------------------------------------------------------

    def term_ids(self, conn: sqlite3.Connection, terms: Iterable[str], *, create: bool = False) -> dict[str, int]:
        """Ids of encoded terms (absent ones left out unless ``create``); caller holds the database lock."""
        ids: dict[str, int] = {}
        missing: list[str] = []
        for term in set(terms):
            known = self._ids.get(term)
            if known is None:
                missing.append(term)
            else:
                ids[term] = known
        if not missing:
            return ids
        if create:
            # OR IGNORE + SELECT: another process may insert the same term between our lookups.
            conn.executemany("INSERT OR IGNORE INTO kg_terms (term) VALUES (?)", [(t,) for t in missing])
        found: dict[str, int] = {}
        for start in range(0, len(missing), _CHUNK):
            chunk = missing[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(conn.execute(f"SELECT term, id FROM kg_terms WHERE term IN ({marks})", chunk).fetchall())
        if not conn.in_transaction or self._committed_reads:
            self._remember(found)
        ids.update(found)
        return ids

    def _remember(self, found: Mapping[str, int]) -> None:
        if len(self._ids) + len(found) > _CACHE_MAX:
            self._ids.clear()
        self._ids.update(found)

    def pattern_ids(self, conn: sqlite3.Connection, pattern: Mapping[str, Node | None]) -> dict[str, int] | None:
        """Column -> id for the bound positions of a pattern; ``None`` if a bound term is not stored."""
        encoded = {col: encode_term(term) for col, term in pattern.items() if term is not None}
        ids = self.term_ids(conn, encoded.values())
        if len(ids) < len(set(encoded.values())):
            return None
        return {col: ids[text] for col, text in encoded.items()}

    # -- writes ---------------------------------------------------------------------------------------

    def add(self, quads: Iterable[Quad]) -> None:
        """Add quads; ones already present are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is added.
            StoreError: SQLite failed; nothing is added.
        """
        rows = [tuple(encode_term(t) for t in quad) for quad in check_quads(quads)]
        if not rows:
            return
        with self._db.read() as conn:  # holds the lock: nobody else can open or close a transaction meanwhile
            outermost = not conn.in_transaction
            with self._db.transaction() as tx:
                ids = self.term_ids(tx, (t for row in rows for t in row), create=True)
                tx.executemany(
                    "INSERT OR IGNORE INTO kg_quads (s, p, o, g) VALUES (?, ?, ?, ?)",
                    [tuple(ids[t] for t in row) for row in rows],
                )
            if outermost:  # committed now, so the new ids are safe to remember
                self._remember(ids)

    def remove(self, quads: Iterable[Quad]) -> None:
        """Remove exactly these quads; missing ones are ignored.

        Raises:
            InvalidInputError: a malformed quad; nothing is removed.
            StoreError: SQLite failed; nothing is removed.
        """
        rows = [tuple(encode_term(t) for t in quad) for quad in check_quads(quads)]
        if not rows:
            return
        with self._db.transaction() as tx:
            ids = self.term_ids(tx, (t for row in rows for t in row))
            tx.executemany(
                "DELETE FROM kg_quads WHERE s = ? AND p = ? AND o = ? AND g = ?",
                [tuple(ids[t] for t in row) for row in rows if all(t in ids for t in row)],
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Adds/removes inside commit together (with any outer ``Database`` transaction), or none do."""
        with self._db.transaction():
            yield

    # -- reads ----------------------------------------------------------------------------------------

    def quads(
        self,
        subject: Node | None = None,
        predicate: Node | None = None,
        obj: Node | None = None,
        graph: URIRef | None = None,
    ) -> Iterator[Quad]:
        """Every stored quad matching the pattern (``None`` is a wildcard), read in one indexed query.

        Raises:
            InvalidInputError: a bound term no quad could hold (a blank node, a relative IRI, ...).
            StoreError: SQLite failed.
        """
        check_pattern(subject, predicate, obj, graph)
        with self._db.read() as conn:
            ids = self.pattern_ids(conn, {"s": subject, "p": predicate, "o": obj, "g": graph})
            if ids is None:
                return iter(())
            where = " AND ".join(f"q.{col} = ?" for col in ids) or "1"
            rows = conn.execute(
                f"SELECT ts.term, tp.term, tob.term, tg.term FROM kg_quads q {_TERMS_JOIN} "
                f"JOIN kg_terms tg ON tg.id = q.g WHERE {where}",
                list(ids.values()),
            ).fetchall()
        found: list[Quad] = []
        for s, p, o, g in rows:
            # check_quads only lets IRIs in as graph names
            found.append((decode_term(s), decode_term(p), decode_term(o), cast(URIRef, decode_term(g))))
        return iter(found)

    def query(self, sparql: str, bindings: Mapping[str, Identifier] | None = None) -> list[Sequence[Node | None]]:
        """Run SELECT/ASK over all named graphs (the default graph is their union) in one read snapshot.

        Raises:
            QueryError: malformed query or bindings, or not SELECT/ASK.
            StoreError: SQLite failed.
        """
        from kg._sparql_eval import run_query

        checked = check_bindings(bindings)
        prepare_query(sparql)  # fail fast on bad SPARQL without taking the lock
        with self._db.read() as conn:
            own_snapshot = not conn.in_transaction
            if own_snapshot:
                conn.execute("BEGIN")  # one consistent view even if other processes write meanwhile
            self._committed_reads = own_snapshot
            try:
                return run_query(self._rdf_dataset(), sparql, checked)
            finally:
                self._committed_reads = False
                if own_snapshot:
                    conn.execute("COMMIT")

    def _rdf_dataset(self) -> QuadDataset:
        if self._dataset is None:
            from kg._sparql_eval import QuadDataset
            from kg._sqlite_rdf import SQLiteRDFStore

            self._dataset = QuadDataset(store=SQLiteRDFStore(self))
        return self._dataset

    def __len__(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM kg_quads").fetchone()[0])

    def close(self) -> None:
        """Close the database if :meth:`open` created it; a database passed in stays open."""
        if self._owns_db:
            self._db.close()
