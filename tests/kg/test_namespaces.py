"""Tenant namespaces of the knowledge graph: writes land in one, reads see their own plus shared ones."""

from __future__ import annotations

import pytest
from rdflib import Literal

from kg import FA, WORLD_NAMESPACE, KnowledgeGraph, MemoryTripleStore, Provenance, load_schema
from memory import Triple
from tools.errors import InvalidInputError, NotFoundError

ALICE = ["alice", WORLD_NAMESPACE]
BOB = ["bob", WORLD_NAMESPACE]


@pytest.fixture
def kg() -> KnowledgeGraph:
    return KnowledgeGraph(MemoryTripleStore(), load_schema())


def _objects(kg: KnowledgeGraph, subject: str, namespaces: list[str] | None) -> list[str]:
    return [a.triple.object for a in kg.facts(subject, "company_ceo", namespaces=namespaces)]


def test_a_tenants_write_neither_replaces_nor_shows_another_tenants_fact(kg: KnowledgeGraph) -> None:
    kg.add(Triple("Hiddenco", "company_ceo", "Ann Private"), Provenance("user:alice", "tell", "e1", "alice"))
    result = kg.add(Triple("Hiddenco", "company_ceo", "Bob Pick"), Provenance("user:bob", "tell", "e2", "bob"))
    assert result.created and result.superseded == ()  # nothing of alice's was invalidated
    assert _objects(kg, "Hiddenco", ALICE) == ["Ann Private"]
    assert _objects(kg, "Hiddenco", BOB) == ["Bob Pick"]
    assert kg.history("Hiddenco", namespaces=BOB)[0].namespace == "bob"
    assert [a.namespace for a in kg.history("Hiddenco", namespaces=BOB)] == ["bob"]
    assert kg.conflicts(Triple("Hiddenco", "company_ceo", "Carl"), namespaces=BOB)[0].existing.object == "Bob Pick"
    assert all(
        c.existing.object != "Ann Private"
        for c in kg.conflicts(Triple("Hiddenco", "company_ceo", "Carl"), namespaces=BOB)
    )


def test_own_fact_shadows_the_world_for_its_tenant_only_and_rolls_back(kg: KnowledgeGraph) -> None:
    kg.add(Triple("Acme", "company_ceo", "Old Boss"), Provenance("world:load"))
    kg.add(Triple("Acme", "company_ceo", "New Boss"), Provenance("user:bob", "tell", "e-b", "bob"))
    assert _objects(kg, "Acme", BOB) == ["New Boss"]
    assert _objects(kg, "Acme", ALICE) == ["Old Boss"]
    assert kg.view(ALICE).facts("Acme", "company_ceo", "New Boss") == []
    kg.rollback("e-b")
    assert _objects(kg, "Acme", BOB) == ["Old Boss"]
    current = list(kg.store.quads(None, None, None, FA.current))
    assert len(current) == 1  # the world's fact never left the current view


def test_supersession_stays_inside_the_writers_namespace(kg: KnowledgeGraph) -> None:
    kg.add(Triple("Acme", "company_ceo", "Ann"), Provenance("user:alice", "tell", "e1", "alice"))
    kg.add(Triple("Acme", "company_ceo", "Ann"), Provenance("user:bob", "tell", "e2", "bob"))
    replaced = kg.add(Triple("Acme", "company_ceo", "Zed"), Provenance("user:bob", "tell", "e3", "bob"))
    assert [a.namespace for a in replaced.superseded] == ["bob"]
    assert _objects(kg, "Acme", ALICE) == ["Ann"]
    assert len(list(kg.store.quads(None, None, None, FA.current))) == 2  # alice's Ann is still current


def test_an_assertion_stored_without_a_namespace_belongs_to_the_world(kg: KnowledgeGraph) -> None:
    added = kg.add(Triple("Acme", "company_ceo", "Ann"), Provenance("world:load"))
    graphs = [q for q in kg.store.quads(None, FA.namespace, None, FA.provenance)]
    assert graphs == []  # legacy layout: no namespace quad at all
    assert kg.assertion(added.assertion.id).namespace == WORLD_NAMESPACE
    assert _objects(kg, "Acme", ["carol", WORLD_NAMESPACE]) == ["Ann"]
    assert _objects(kg, "Acme", ["carol"]) == []
    mine = kg.add(Triple("Beta", "company_ceo", "Cy"), Provenance("user:c", namespace="carol"))
    assert (mine.assertion.id, Literal("carol")) in [
        (str(q[0]).rsplit("/", 1)[-1], q[2]) for q in kg.store.quads(None, FA.namespace, None, FA.provenance)
    ]


def test_bad_namespaces_are_refused_before_anything_is_written(kg: KnowledgeGraph) -> None:
    with pytest.raises(InvalidInputError):
        kg.add(Triple("Acme", "company_ceo", "Ann"), Provenance("user:x", namespace="bad space"))
    assert list(kg.store.quads(None, None, None, None)) == []
    with pytest.raises(InvalidInputError):
        kg.facts("Acme", namespaces="alice")


def test_names_and_aliases_a_tenant_wrote_resolve_for_that_tenant_only(kg: KnowledgeGraph) -> None:
    """Issue 16, gap 1: the names index is namespaced (world names for all, a tenant's for that tenant)."""
    kg.add(
        Triple("Eiffel Tower", "landmark_in_country", "France"), Provenance("world"), aliases={"France": ["Hexagon"]}
    )
    hidden = Provenance("user:alice", "tell", "e1", "alice")
    kg.add(Triple("QuuxCorp", "company_ceo", "Ann Private"), hidden, aliases={"QuuxCorp": ["QC"]})
    kg.entity("France", ["Gaul"], namespace="alice")  # her alias of a world entity
    assert [a.triple.object for a in kg.facts("QC", namespaces=ALICE)] == ["Ann Private"]
    assert kg.facts("QC", namespaces=BOB) == [] and kg.history("QC", namespaces=BOB) == []
    assert {e.label for e in kg.entities(BOB)} == {"Eiffel Tower", "France"}
    assert kg.get_entity("France", namespaces=BOB).aliases == ("Hexagon",)
    assert kg.get_entity("France", namespaces=ALICE).aliases == ("Gaul", "Hexagon")
    assert kg.facts(None, None, "Gaul", namespaces=BOB) == [] and kg.facts(None, None, "Gaul", namespaces=ALICE) != []
    with pytest.raises(NotFoundError):
        kg.get_entity("QuuxCorp", namespaces=BOB)
    assert ("alice", kg.get_entity("QuuxCorp", namespaces=ALICE)) in kg.named_entities()
    assert all(ns == WORLD_NAMESPACE for ns, _ in kg.named_entities([WORLD_NAMESPACE]))


def test_rolling_back_a_tenants_edit_removes_exactly_the_names_it_wrote(kg: KnowledgeGraph) -> None:
    kg.add(Triple("Acme", "company_ceo", "Ann"), Provenance("world"))
    before = set(kg.store.quads(None, None, None, None))
    kg.add(Triple("Acme", "company_ceo", "Bo"), Provenance("user:bob", "tell", "e2", "bob"), aliases={"Acme": ["AC"]})
    assert kg.get_entity("Acme", namespaces=BOB).aliases == ("AC",)
    kg.rollback("e2")
    assert set(kg.store.quads(None, None, None, None)) == before


def test_multi_hop_objects_see_only_the_readers_namespaces(kg: KnowledgeGraph) -> None:
    """Issue 16, gap 3: ``objects`` was read over every namespace."""
    kg.add(Triple("Ann", "person_father", "Carl"), Provenance("world"))
    kg.add(Triple("Carl", "person_mother", "Dora"), Provenance("world"))
    kg.add(Triple("Carl", "person_mother", "Secret Mum"), Provenance("user:alice", "tell", "e3", "alice"))
    path = ["person_father", "person_mother"]
    assert [e.label for e in kg.objects("Ann", path, namespaces=BOB)] == ["Dora"]
    assert [e.label for e in kg.objects("Ann", path, namespaces=ALICE)] == ["Secret Mum"]  # hers shadows
    assert [e.label for e in kg.view(BOB).objects("Ann", path)] == ["Dora"]
    assert sorted(e.label for e in kg.objects("Ann", path)) == ["Dora", "Secret Mum"]  # None: the whole graph
