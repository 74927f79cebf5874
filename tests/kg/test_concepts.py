"""Concepts in the knowledge graph: versioned definitions, subclass closure, redefinition, conflicts, bad input."""

from __future__ import annotations

import pytest

from kg import ConceptGraph, KnowledgeGraph, MemoryTripleStore, Provenance, load_schema
from tools.errors import HierarchyCycleError, InvalidDefinitionError

WORLD = Provenance("world:load", edit_id="world")
ROWS = [
    ("place", None, "a part of the world that can be found on a map", []),
    ("city", "place", "a large town where many people live and work", ["Tokyo", "Chandler"]),
    ("country", "place", "a nation with its own government", ["Egypt"]),
    ("product", None, "a thing that a company makes and offers to people", []),
    ("Microsoft product", "product", "a product that was created by the company Microsoft", ["Windows 7"]),
]


@pytest.fixture
def concepts() -> ConceptGraph:
    graph = ConceptGraph(KnowledgeGraph(MemoryTripleStore(), load_schema()))
    graph.load(ROWS, WORLD)
    return graph


def _quads(c: ConceptGraph) -> set[tuple[object, ...]]:
    return set(c.graph.store.quads(None, None, None, None))


def test_instance_of_follows_the_subclass_closure(concepts: ConceptGraph) -> None:
    yes = concepts.is_instance("Tokyo", "place")
    assert yes.answer is True
    assert [a.triple.object for a in yes.citations] == ["city", "place"]
    assert concepts.is_instance("Windows 7", "place").answer is False
    assert concepts.is_instance("Nobody", "place").answer is None
    assert concepts.instances("place") == ["Chandler", "Egypt", "Tokyo"]


def test_class_iris_are_the_classes_not_their_instances(concepts: ConceptGraph) -> None:
    labels = {concepts.graph.get_entity(iri).label for iri in concepts.class_iris()}
    assert labels == {"place", "city", "country", "product", "Microsoft product"}
    concepts.define("gadget", "a small mechanical device", Provenance("user:alice", edit_id="e2"))  # new, no parent
    assert "gadget" in {concepts.graph.get_entity(iri).label for iri in concepts.class_iris()}


def test_redefinition_is_versioned_read_through_and_rolled_back_exactly(concepts: ConceptGraph) -> None:
    before = _quads(concepts)
    new = "a product that was created by the company Microsoft"
    change = concepts.define("place", new, Provenance("user:alice", edit_id="e1"))
    assert not change.created
    assert change.superseded is not None and change.superseded.triple.object.startswith("a part of the world")
    assert change.conflicts == ("Chandler", "Egypt", "Tokyo")  # all stored places contradict it
    assert (current := concepts.definition("place")) is not None and current.triple.object == new
    assert concepts.is_instance("Tokyo", "place").answer is False
    assert concepts.is_instance("Windows 7", "place").answer is True
    assert concepts.denotes("Microsoft product") == "Microsoft product"  # the older definition keeps its concept
    assert concepts.is_instance("Windows 7", "Microsoft product").answer is True
    concepts.graph.rollback("e1")
    assert _quads(concepts) == before
    assert concepts.is_instance("Tokyo", "place").answer is True


def test_a_genus_under_another_root_is_a_conflict(concepts: ConceptGraph) -> None:
    assert concepts.definition_conflicts("city", "a product sold in shops") == ["Chandler", "Tokyo"]
    assert concepts.definition_conflicts("city", "a place with a mayor") == []


def test_unknown_concept_is_created(concepts: ConceptGraph) -> None:
    change = concepts.define("volcano", "a mountain that can erupt", Provenance("user:alice", edit_id="e2"))
    assert change.created and change.conflicts == ()
    assert concepts.is_concept("volcano")


@pytest.mark.parametrize("bad", ["", "   .", "x" * 400])
def test_bad_definitions_change_nothing(concepts: ConceptGraph, bad: str) -> None:
    before = _quads(concepts)
    with pytest.raises(InvalidDefinitionError):
        concepts.define("place", bad, Provenance("user:alice", edit_id="e3"))
    assert _quads(concepts) == before


def test_a_cycle_in_the_hierarchy_is_refused(concepts: ConceptGraph) -> None:
    before = _quads(concepts)
    with pytest.raises(HierarchyCycleError):
        concepts.set_parent("place", "city", Provenance("user:alice", edit_id="e4"))
    with pytest.raises(HierarchyCycleError):
        concepts.define("place", "a region", Provenance("user:alice", edit_id="e5"), parent="place")
    with pytest.raises(HierarchyCycleError):
        ConceptGraph(concepts.graph).load([("a", "b", "an a", []), ("b", "a", "a b", [])], WORLD)
    assert _quads(concepts) == before
