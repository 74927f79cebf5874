"""The concept desk: definitions told in English update KG and memory together, answers cite the KG."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent import Agent, ConceptDesk
from kg import KnowledgeGraph, MemoryTripleStore, Provenance, load_schema
from memory import VectorMemory
from tests.memory.fakes import HashEmbedder
from tools.errors import InvalidDefinitionError, InvalidInputError, StoreError

ROWS = [
    ("place", None, "a part of the world that can be found on a map", []),
    ("city", "place", "a large town where many people live and work", ["Tokyo", "Chandler"]),
    ("product", None, "a thing that a company makes and offers to people", []),
    ("Microsoft product", "product", "a product that was created by the company Microsoft", ["Windows 7"]),
]
NEW = "A city is a product that was created by the company Microsoft."


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[VectorMemory]:
    with VectorMemory.open(tmp_path / "mem", HashEmbedder()) as mem:
        yield mem


@pytest.fixture
def desk(memory: VectorMemory) -> ConceptDesk:
    graph = KnowledgeGraph(MemoryTripleStore(), load_schema())
    desk = ConceptDesk(graph, memory, trusted={"alice"})
    desk.concepts.load(ROWS, Provenance("world:load", edit_id="world"))
    return desk


def _quads(desk: ConceptDesk) -> set[Any]:
    return set(desk.concepts.graph.store.quads(None, None, None, None))


def test_questions_are_answered_from_the_kg_with_citations(desk: ConceptDesk) -> None:
    what = desk.answer("What is a city?")
    assert what is not None and what.text == "a large town where many people live and work"
    assert what.citations and what.citations[0].citation.assertion_id
    yes = desk.answer("Is Tokyo a place?")
    assert yes is not None and yes.answer is True
    assert [e.citation.triple.object for e in yes.citations] == ["city", "place"]  # type: ignore[union-attr]
    no = desk.answer("Is Windows 7 an example of a city?")
    assert no is not None and no.answer is False
    assert desk.answer("Is Atlantis a city?").answer is None  # type: ignore[union-attr]
    assert desk.answer("What is the capital of France?") is None  # not a concept: left to the agent
    assert desk.answer("What is " + "x" * 1_500 + "?") is None  # no entity has such a label: not an error
    assert desk.answer("What is a \x00city?") is None


def test_a_trusted_definition_updates_kg_and_memory_reports_conflicts_and_rolls_back(
    desk: ConceptDesk, memory: VectorMemory
) -> None:
    before, items = _quads(desk), memory.count()
    told = desk.tell(NEW, user="alice")
    assert told.status == "applied" and not told.created
    assert told.conflicts == ("Chandler", "Tokyo") and "conflict" in told.message
    assert desk.answer("What is a city?").text == "a product that was created by the company Microsoft"  # type: ignore[union-attr]
    assert desk.answer("Is Tokyo a city?").answer is False  # type: ignore[union-attr]
    assert desk.answer("Is Windows 7 a city?").answer is True  # type: ignore[union-attr]
    assert memory.count() == items + 1
    desk.rollback(told.edit_id or "")
    assert _quads(desk) == before and memory.count() == items
    assert desk.answer("Is Tokyo a city?").answer is True  # type: ignore[union-attr]


def test_untrusted_definitions_are_quarantined(desk: ConceptDesk) -> None:
    before = _quads(desk)
    told = desk.tell(NEW, user="mallory")
    assert told.status == "quarantined" and told.edit_id is None
    assert _quads(desk) == before


def test_an_unknown_concept_is_created_and_reported(desk: ConceptDesk) -> None:
    told = desk.tell("A volcano is a mountain that can erupt.", user="alice")
    assert told.created and "created" in told.message
    assert desk.answer("What is a volcano?").text == "a mountain that can erupt"  # type: ignore[union-attr]
    hub = desk.tell("A port city is a city that has a harbour.", user="alice")  # placed under its genus
    assert hub.created and [a.triple.object for a in desk.concepts.ancestors("port city")] == ["city", "place"]
    desk.rollback(hub.edit_id or "")
    assert not desk.concepts.is_concept("port city")


@pytest.mark.parametrize("statement", ["A city is a " + "very " * 80 + "big town.", "Hello there."])
def test_bad_statements_change_nothing(desk: ConceptDesk, statement: str) -> None:
    before = _quads(desk)
    with pytest.raises(InvalidInputError):
        desk.tell(statement, user="alice")
    assert _quads(desk) == before


def test_an_oversized_definition_is_a_definition_error(desk: ConceptDesk) -> None:
    with pytest.raises(InvalidDefinitionError):
        desk.tell("A city is a " + "very " * 80 + "big town.", user="alice")


def test_a_failed_memory_write_undoes_the_kg_write(desk: ConceptDesk) -> None:
    class Broken:
        def add(self, *args: Any, **kwargs: Any) -> Any:
            raise StoreError("disk full")

        def rollback(self, edit_id: str) -> int:
            return 0

    broken = ConceptDesk(desk.concepts.graph, Broken(), trusted={"alice"})
    before = _quads(desk)
    with pytest.raises(StoreError):
        broken.tell(NEW, user="alice")
    assert _quads(desk) == before


def test_the_agent_routes_concept_questions_and_definitions_to_the_desk(desk: ConceptDesk) -> None:
    graph = desk.concepts.graph
    wm = SimpleNamespace(retriever=None, entities=None, relations=None, graph=graph)
    agent = Agent(wm, lm=SimpleNamespace(), concepts=desk)  # type: ignore[arg-type]
    answer = agent.ask("Is Tokyo a city?")
    assert answer.action == "kg" and answer.text == "yes" and answer.citations
    told = agent.tell(NEW, user="alice")
    assert agent.ask("Is Tokyo a city?").text == "no"
    assert told.edit_id is not None  # narrows the type (tell is typed now)
    agent.rollback(told.edit_id)
    assert agent.ask("Is Tokyo a city?").text == "yes"
