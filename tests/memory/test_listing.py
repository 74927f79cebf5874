"""list_items: pages of the items valid at a time, by namespace, subject and relation, newest first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from memory import Database, Scope, Triple, VectorMemory, list_items
from tests.memory.fakes import HashEmbedder, ManualClock
from tools.errors import InvalidInputError


@pytest.fixture
def stores(tmp_path: Path, embedder: HashEmbedder, clock: ManualClock) -> Iterator[tuple[Database, VectorMemory]]:
    db = Database.open(tmp_path / "state.sqlite")
    with db, VectorMemory(db, embedder, tmp_path / "index", None, clock) as memory:
        yield db, memory


def test_pages_filters_and_time_travel(stores: tuple[Database, VectorMemory], clock: ManualClock) -> None:
    db, memory = stores
    for i in range(7):
        memory.add(f"fact {i}", scope=Scope(agent_id="a"), triple=Triple(f"S{i % 2}", "company_ceo", f"P{i}"))
        clock.advance()
    memory.add("other tenant", scope=Scope(agent_id="b"))
    before = clock.advance()
    first = list_items(db, ["a"], subject="S0")
    clock.advance()
    memory.update(first.items[0].id, "fact 6, revised")
    page = list_items(db, ["a"], limit=3, offset=3)
    assert page.total == 7 and [i.text for i in page.items] == ["fact 3", "fact 2", "fact 1"]
    assert [i.text for i in list_items(db, ["a"], limit=1).items] == ["fact 6, revised"]  # the new version
    assert [i.text for i in list_items(db, ["a"], limit=1, as_of=before).items] == ["fact 6"]
    assert list_items(db, ["a"], subject="s1").total == 3  # subjects match case-insensitively
    assert list_items(db, ["a", "b"]).total == 8 and list_items(db, ["a"], relation="company_hq").total == 0
    assert list_items(db, ["a"], as_of=clock.now - timedelta(days=1)).total == 0
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        with pytest.raises(InvalidInputError):
            list_items(db, ["a"], **bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        list_items(db, [])
