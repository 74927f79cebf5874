"""Milvus as the vector index (milvus-lite): the index contract, and the memory over it with SQLite as truth.

Faults: a collection dropped behind the memory's back is rebuilt from SQLite on the next search; a
collection of another database is rebuilt on open; an unreachable server is a typed error at open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory import Database, VectorIndex, VectorMemory
from memory._milvus_index import MilvusConfig, MilvusIndex, MilvusState, connect
from tests.memory.fakes import HashEmbedder
from tests.memory.index_contract import DIM, IndexContract
from tools.errors import ConfigError, IndexUnavailableError, StoreError

pytest.importorskip("pymilvus")


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """One milvus-lite server for the module (it starts a process: about a second)."""
    uri = str(tmp_path_factory.mktemp("milvus") / "milvus.db")
    client = connect(MilvusConfig(uri=uri))
    yield client, uri
    client.close()


class TestMilvusIndex(IndexContract):
    expected_kind = "milvus"

    @pytest.fixture(autouse=True)
    def _client(self, lite: tuple[Any, str], request: pytest.FixtureRequest) -> None:
        self.client, uri = lite
        self.config = MilvusConfig(uri=uri, collection=f"c_{abs(hash(request.node.name)) % 10**9}")

    def make_index(self) -> VectorIndex:
        return MilvusIndex.create(self.client, self.config, DIM)

    def reload(self, path: Path, state: dict[str, Any]) -> VectorIndex:
        return MilvusIndex(self.client, self.config, DIM)


def _memory(db_path: Path, uri: str, collection: str = "mem") -> VectorMemory:
    return VectorMemory(Database.open(db_path), HashEmbedder(), milvus=MilvusConfig(uri=uri, collection=collection))


def test_memory_over_milvus_searches_reopens_and_recovers(tmp_path: Path) -> None:
    uri = str(tmp_path / "milvus.db")
    memory = _memory(tmp_path / "state.sqlite", uri)
    items = memory.add_many([f"fact number {i} about topic {i % 7}" for i in range(60)])
    assert memory.index_kind == "milvus" and memory.index_size == 60
    assert memory.search(items[17].text, k=1)[0].item.id == items[17].id
    memory.update(items[3].id, "a changed text for item three")
    memory.close()

    again = _memory(tmp_path / "state.sqlite", uri)  # the collection is reused, caught up from the log
    assert again.index_size == 61  # every version is indexed, as with FAISS
    assert again.search("a changed text for item three", k=1)[0].item.text == "a changed text for item three"

    state = MilvusState(MilvusConfig(uri=uri, collection="mem"))  # behind the memory's back
    state.drop()
    hits = again.search(items[40].text, k=1)  # rebuilt from SQLite, nothing lost
    assert hits[0].item.id == items[40].id and again.index_size == 61
    again.close()


def test_a_collection_of_another_database_is_rebuilt(tmp_path: Path) -> None:
    uri = str(tmp_path / "milvus.db")
    first = _memory(tmp_path / "a.sqlite", uri)
    first.add_many(["only in database a"])
    first.close()
    second = _memory(tmp_path / "b.sqlite", uri)  # same collection name, other database
    assert second.index_size == 0 and second.search("only in database a", k=3) == []
    second.close()


def test_unreachable_server_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        VectorMemory(
            Database.open(tmp_path / "s.sqlite"),
            HashEmbedder(),
            milvus=MilvusConfig(uri="http://127.0.0.1:9", collection="x", timeout_s=2),
        )


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ConfigError):
        MilvusConfig(uri="")
    with pytest.raises(ConfigError):
        MilvusConfig(uri="x.db", collection="bad-name; drop")
    assert issubclass(IndexUnavailableError, StoreError)
