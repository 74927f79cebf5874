"""Names in other languages: ``skos:prefLabel "法国"@zh`` beside the label "France" (``kg/_labels.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg import EntityLinker, KnowledgeGraph, MemoryTripleStore, Provenance, SQLiteTripleStore, load_schema
from memory import Database, Triple
from tools.errors import InvalidInputError

CHAVILLE = Triple("Chaville", "landmark_in_country", "France")


@pytest.fixture(params=["memory", "sqlite"])
def graph(request: pytest.FixtureRequest, tmp_path: Path) -> KnowledgeGraph:
    if request.param == "memory":
        return KnowledgeGraph(MemoryTripleStore(), load_schema())
    db = Database.open(tmp_path / "kg.sqlite")
    request.addfinalizer(db.close)
    return KnowledgeGraph(SQLiteTripleStore(db), load_schema())


def test_a_chinese_label_is_read_back_and_the_english_one_stays_the_name(graph: KnowledgeGraph) -> None:
    graph.add(CHAVILLE, Provenance(who="world", source="d1"))
    assert graph.label_in("France", "zh") is None
    entity = graph.entity("France", labels={"zh": "法国"})
    assert entity.label == "France" and entity.aliases == ("法国",)
    assert graph.label_in("France", "zh") == "法国"
    assert graph.label_in("法国", "zh") == "法国"  # found by its alias too
    assert graph.label_in(entity.iri, "zh-Hans") is None  # a subtag asked for is not the bare language
    assert graph.label_in("Chaville", "zh") is None
    assert graph.label_in("Nowhere", "zh") is None
    assert [a.triple for a in graph.facts("Chaville", "landmark_in_country")] == [CHAVILLE]  # labels unchanged
    assert [a.triple for a in graph.facts(None, "landmark_in_country", "法国")] == [CHAVILLE]


def test_labels_are_idempotent_and_one_per_language(graph: KnowledgeGraph) -> None:
    graph.entity("France", labels={"zh": "法国"})
    graph.entity("France", labels={"zh": "法国"})
    assert graph.get_entity("France").aliases == ("法国",)
    with pytest.raises(InvalidInputError, match="already has the zh label"):
        graph.entity("France", labels={"zh": "法兰西"})
    assert graph.label_in("France", "zh") == "法国"
    assert graph.get_entity("France").aliases == ("法国",)  # nothing of the refused call was written
    with pytest.raises(InvalidInputError, match="already has the zh label"):
        graph.entity("France", labels={"ZH": "法兰西"})  # tags are case-insensitive
    assert graph.label_in("France", "ZH") == "法国"


@pytest.mark.parametrize(
    "labels",
    [{"chinese": "法国"}, {"": "法国"}, {"zh": ""}, {"zh": "法\n国"}, {"zh": 7}, {1: "法国"}, ["zh", "法国"]],
)
def test_bad_labels_are_typed_errors(graph: KnowledgeGraph, labels: object) -> None:
    with pytest.raises(InvalidInputError):
        graph.entity("France", labels=labels)  # type: ignore[arg-type]
    assert graph.names_of("France") == []  # nothing written


def test_a_bad_language_to_read_is_a_typed_error(graph: KnowledgeGraph) -> None:
    graph.entity("France", labels={"zh": "法国"})
    with pytest.raises(InvalidInputError):
        graph.label_in("France", "中文")


def test_a_tenant_label_is_seen_by_its_readers_only(graph: KnowledgeGraph) -> None:
    graph.add(CHAVILLE, Provenance(who="world", source="d1"))
    graph.entity("France", labels={"zh": "法國"}, namespace="alice")
    assert graph.label_in("France", "zh", namespaces=["alice", "world"]) == "法國"
    assert graph.label_in("France", "zh", namespaces=["world"]) is None


def test_rollback_of_the_edit_that_named_the_entity_takes_its_labels(graph: KnowledgeGraph) -> None:
    graph.add(CHAVILLE, Provenance(who="alice", source="chat", edit_id="e-1"))
    graph.entity("France", labels={"zh": "法国"})
    graph.rollback("e-1")
    assert graph.names_of("France") == []
    assert graph.label_in("France", "zh") is None


def test_the_linker_finds_the_entity_by_its_chinese_name(graph: KnowledgeGraph) -> None:
    graph.add(CHAVILLE, Provenance(who="world", source="d1"))
    graph.entity("France", labels={"zh": "法国"})
    linker = EntityLinker(graph.entities())
    mentions = linker.find_mentions("法国的首都是哪里？")
    assert [(m.link.entity.label, m.link.method) for m in mentions] == [("France", "alias")]
    assert [m.link.entity.label for m in linker.find_mentions("法國的首都是哪裡?")] == ["France"]  # traditional
    assert [m.link.entity.label for m in linker.find_mentions("What is the capital of France?")] == ["France"]
