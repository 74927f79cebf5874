"""The interpreter's type check: readings whose names are known only as classes the relation excludes."""

from __future__ import annotations

import pytest

from agent.tell import TemplateInterpreter, load_statement_phrasings
from agent.tell._types import TypeCheck
from kg import Entity, EntityLinker, KnowledgeGraph, MemoryTripleStore, Provenance, entity_iri, load_schema
from memory import Triple

FACTS = [
    Triple("1 Geminorum", "star_constellation", "Gemini"),
    Triple("Rigel", "star_constellation", "Orion"),
    Triple("AOL", "company_ceo", "Tim Armstrong"),
    Triple("AOL", "company_hq", "New York"),
    Triple("Al Gore", "person_occupation", "politician"),
    Triple("Singapore Airlines", "company_hq", "Singapore"),
    Triple("Raffles Hotel", "landmark_in_country", "Singapore"),
]


@pytest.fixture(scope="module")
def graph() -> KnowledgeGraph:
    kg = KnowledgeGraph(MemoryTripleStore(), load_schema())
    for i, t in enumerate(FACTS):
        kg.add(t, Provenance("world", edit_id=f"e-{i:08x}"))
    return kg


@pytest.fixture(scope="module")
def interpreter(graph: KnowledgeGraph) -> TemplateInterpreter:
    names = sorted({n for t in FACTS for n in (t.subject, t.object)})
    linker = EntityLinker([Entity(str(entity_iri(n)), n) for n in names])
    return TemplateInterpreter(load_schema(), linker, graph, load_statement_phrasings())


def _triples(interpreter: TemplateInterpreter, text: str) -> list[tuple[str, str, str]]:
    return [(c.triple.subject, c.triple.relation, c.triple.object) for c in interpreter.interpret(text).claims]


def test_the_world_schema_declares_domains_ranges_and_disjoint_classes() -> None:
    schema = load_schema()
    assert (schema.relation("company_ceo").domain, schema.relation("company_ceo").range) == ("Company", "Person")
    assert schema.relation("landmark_in_country").range == "Country"
    assert schema.relation("child").domain is None  # the Pitfalls relations declare none
    assert schema.disjoint("Star", "Landmark") and schema.disjoint("Constellation", "Country")
    assert schema.disjoint("City", "Country") and not schema.disjoint("University", "City")
    assert not schema.disjoint("Person", "Person")


def test_classes_come_from_the_graph_and_from_the_message(graph: KnowledgeGraph) -> None:
    schema = load_schema()
    check = TypeCheck(schema, EntityLinker([]), graph)
    assert check.classes("Orion") == {"Constellation"}
    assert check.classes("AOL") == {"Company"}
    assert check.classes("Singapore") == {"City", "Country"}
    assert check.classes("Jane Roe") == set()
    assert check.classes("Jane Roe", [Triple("AOL", "company_ceo", "Jane Roe")]) == {"Person"}


def test_fits(graph: KnowledgeGraph) -> None:
    check = TypeCheck(load_schema(), EntityLinker([]), graph)
    assert not check.fits(Triple("1 Geminorum", "landmark_in_country", "Orion"))  # a star, a constellation
    assert check.fits(Triple("1 Geminorum", "star_constellation", "Orion"))
    assert not check.fits(Triple("AOL", "person_occupation", "politician"))  # a company has no occupation
    assert check.fits(Triple("Merlion", "landmark_in_country", "Singapore"))  # a city and a country: fits
    assert check.fits(Triple("Jane Roe", "company_hq", "Paris"))  # nothing known: fits
    told = [Triple("AOL", "company_ceo", "Jane Roe")]
    assert not check.fits(Triple("Jane Roe", "company_hq", "Paris"), told)  # a person has no headquarters
    assert check.fits(Triple("X", "child", "Y"))  # a relation without classes


def test_a_phrasing_whose_names_do_not_fit_gives_way_to_one_that_does(interpreter: TemplateInterpreter) -> None:
    # "can be found in" is a landmark's phrasing; Orion is known as a constellation and 1 Geminorum as a star
    assert _triples(interpreter, "1 Geminorum can be found in Orion.") != [
        ("1 Geminorum", "landmark_in_country", "Orion")
    ]
    assert _triples(interpreter, "The Merlion can be found in Singapore.") == [
        ("The Merlion", "landmark_in_country", "Singapore")
    ]
    assert _triples(interpreter, "Rigel is a star of the constellation Gemini.") == [
        ("Rigel", "star_constellation", "Gemini")
    ]
    assert _triples(interpreter, "AOL is a star of the constellation Gemini.") == []  # a company is not a star


def test_a_relative_clause_is_read_as_its_own_statement(interpreter: TemplateInterpreter) -> None:
    assert _triples(interpreter, "AOL, which is headquartered in Boston, makes software.") == [
        ("AOL", "company_hq", "Boston")
    ]
    assert _triples(interpreter, "AOL, whose CEO is Jane Roe, is headquartered in Boston.") == [
        ("AOL", "company_ceo", "Jane Roe"),
        ("AOL", "company_hq", "Boston"),
    ]


def test_a_reading_that_leaves_out_a_name_of_its_class(graph: KnowledgeGraph) -> None:
    check = TypeCheck(load_schema(), EntityLinker([]), graph)
    misread = Triple(
        "Mark Smith", "company_ceo", "Tim Armstrong"
    )  # "Mark Smith succeeded Tim Armstrong as CEO of AOL."
    assert check.left_out(misread, ["Mark Smith", "Tim Armstrong", "AOL"]) == "AOL"  # a company, not in the reading
    assert check.left_out(Triple("AOL", "company_ceo", "Mark Smith"), ["Mark Smith", "Tim Armstrong", "AOL"]) is None
    # between two people any of several names may fit: not checked
    assert check.left_out(Triple("Jane Roe", "spouse", "John Doe"), ["Jane Roe", "Tim Armstrong", "John Doe"]) is None
    # a name the reading's own names hold ("AOL" in "AOL Europe") is not left out
    assert check.left_out(Triple("AOL Europe", "company_ceo", "Jane Roe"), ["AOL Europe", "AOL", "Jane Roe"]) is None
