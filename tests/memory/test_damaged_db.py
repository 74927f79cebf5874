"""A damaged SQLite page is reported when the database is opened (issue 16, item 7), not at the first write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tools.base import Database
from tools.errors import StoreError


def _filled(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("CREATE INDEX t_text ON t (text)")
    conn.executemany("INSERT INTO t (text) VALUES (?)", [(f"fact number {i} " * 4,) for i in range(2_000)])
    conn.commit()
    conn.close()


def test_a_damaged_page_is_reported_at_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite"
    _filled(path)
    Database.open(path).close()  # a sound file opens
    data = bytearray(path.read_bytes())
    page = 1024
    middle = (len(data) // page // 2) * page
    data[middle + 8 : middle + page] = b"\xa5" * (page - 8)  # garbage over one b-tree page's cells
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"is damaged .*Restore it from a backup") as err:
        Database.open(path)
    assert ".recover" in str(err.value)
    assert isinstance(Database.open(path, check=False), Database)  # opting out still opens (for salvage)
