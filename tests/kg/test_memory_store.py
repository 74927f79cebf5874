"""MemoryTripleStore passes the TripleStore contract."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kg import MemoryTripleStore
from kg._store import TripleStore
from tests.kg.store_contract import TripleStoreContract


class TestMemoryStore(TripleStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[TripleStore]:
        store = MemoryTripleStore()
        yield store
        store.close()
