"""The SQLite database that is the source of truth for the vector memory and the knowledge graph (shared base).

One file in WAL mode. Both stores write through :meth:`Database.transaction`, so a memory item and its
KG assertion commit together or not at all, and a process killed mid-write loses nothing it acknowledged.
Several processes may open the same file: writers take SQLite's write lock (``BEGIN IMMEDIATE``) and wait
up to ``busy_timeout_s`` for it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.errors import StoreError

__all__ = ["Database"]

logger = logging.getLogger(__name__)


class Database:
    """A thread-safe handle on one SQLite file.

    All access goes through one connection guarded by a re-entrant lock: SQLite serialises writers anyway,
    and one connection lets nested ``transaction()`` blocks (memory + KG in one edit) share a transaction.

    Example:
        >>> db = Database.open(":memory:")
        >>> with db.transaction() as conn:
        ...     _ = conn.execute("CREATE TABLE t (x INTEGER)")
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def open(cls, path: str | Path, busy_timeout_s: float = 30.0, *, check: bool = True) -> Database:
        """Open (creating if needed) the database file at ``path`` in WAL mode.

        With ``check`` (the default) an existing file is verified with ``PRAGMA quick_check`` first, so a
        damaged page is reported at open, with what to do, rather than by the first write that meets it.

        Raises:
            StoreError: the file cannot be opened, is not a SQLite database, or is damaged.
        """
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            # NORMAL is durable across process crashes (SIGKILL) in WAL mode; FULL adds power-loss safety.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {target}: {exc}") from exc
        if target != ":memory:" and str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"{target}: could not switch to WAL mode (got {mode})")
        if check and target != ":memory:":
            _quick_check(conn, target)
        return cls(conn, target)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested calls become savepoints of the outer one.

        Everything inside commits together when the outermost block exits normally and is rolled back if
        it raises. sqlite3 errors are re-raised as :class:`StoreError`.
        """
        with self._lock:
            depth = self._depth
            name = f"sp{depth}"
            try:
                self._conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {name}")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a transaction on {self.path}: {exc}") from exc
            self._depth += 1
            try:
                yield self._conn
            except BaseException as exc:
                self._depth -= 1
                try:
                    self._conn.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO {name}")
                    if depth > 0:
                        self._conn.execute(f"RELEASE {name}")
                except sqlite3.Error:
                    logger.exception("rollback failed on %s", self.path)
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"database write failed on {self.path}: {exc}") from exc
                raise
            else:
                self._depth -= 1
                try:
                    self._conn.execute("COMMIT" if depth == 0 else f"RELEASE {name}")
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot commit to {self.path}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads (inside a transaction if one is open on this thread)."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"database read failed on {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quick_check(conn: sqlite3.Connection, target: str) -> None:
    """``PRAGMA quick_check``: closes ``conn`` and raises :class:`StoreError` when the file is damaged."""
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems == ["ok"]:
        return
    conn.close()
    found = "; ".join(" ".join(p.split()) for p in problems)  # one line
    raise StoreError(
        f"database {target} is damaged ({found}): nothing was written. Restore it from a backup, "
        f"or salvage what is readable with `sqlite3 {target} .recover | sqlite3 recovered.db`"
    )
