"""Plain pattern queries by index lookups (kg._oxigraph_patterns) give Oxigraph's own SPARQL answers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from rdflib import XSD, Literal, URIRef
from rdflib.term import Identifier

from kg._oxigraph_patterns import pattern_plan
from kg._oxigraph_store import OxigraphTripleStore
from kg._store import Quad
from tests.kg.store_contract import PREFIXES, _sorted_rows
from tools.errors import QueryError

EX = "https://example.org/"
ENTITIES = [URIRef(f"{EX}entity/e{i}") for i in range(12)]
RELATIONS = [URIRef(f"{EX}rel/r{i}") for i in range(3)]
GRAPHS = [URIRef(f"{EX}graph/g{i}") for i in range(6)]
LITERALS = [Literal("x"), Literal("x", lang="en"), Literal("007", datatype=XSD.integer), Literal(7), Literal("y")]

# (query, bound variables): every one is a plain pattern query the lookups answer
PLAIN = [
    ("SELECT ?o WHERE { GRAPH ?g { ?s rel:r0 ?o } }", ("s",)),
    ("SELECT ?s ?g WHERE { GRAPH ?g { ?s rel:r1 ?o } }", ("o",)),
    ("SELECT ?o WHERE { ?s rel:r0 ?o }", ("s",)),  # the default graph: each triple once
    ("SELECT ?s ?o WHERE { ?s ?p ?o }", ("s",)),
    ("SELECT ?x ?g1 ?g2 WHERE { GRAPH ?g1 { ?s rel:r0 ?m } GRAPH ?g2 { ?m rel:r1 ?x } }", ("s",)),
    ("SELECT ?x WHERE { GRAPH ?g { ?s rel:r0 ?m . ?m rel:r1 ?x } }", ("s",)),  # both in one graph
    ("SELECT ?p ?o WHERE { GRAPH g:g1 { ?s ?p ?o } }", ("s",)),
    ("SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }", ("o", "g")),
    ("SELECT ?s ?o WHERE { GRAPH ?g { ?s rel:r2 ?o } }", ("s", "o")),
    ("SELECT ?o ?unbound WHERE { GRAPH ?g { ?s rel:r0 ?o } }", ("s",)),
    ("SELECT ?s ?x WHERE { ?s rel:r0 ?o . ?o rel:r0 ?x }", ("o",)),  # ?o as subject: a literal matches nothing
    ("SELECT ?g ?p WHERE { GRAPH ?g { ?s ?p ?g } }", ("s",)),  # a variable twice in one pattern
    ("SELECT ?s WHERE { ?s rel:r0 ?o . ?s rel:r1 ?o }", ("o",)),
    ('SELECT ?s WHERE { GRAPH ?g { ?s rel:r2 "007"^^xsd:integer } }', ("g",)),
    ("ASK { GRAPH ?g { ?s rel:r0 ?o } }", ("s",)),
    ("ASK { ?s rel:r1 ?o }", ("o",)),
]

# not plain (or not something the lookups should do): answered by Oxigraph's engine
NOT_PLAIN = [
    ("SELECT * WHERE { GRAPH ?g { ?s rel:r0 ?o } }", ("s",)),
    ("SELECT DISTINCT ?o WHERE { GRAPH ?g { ?s rel:r0 ?o } }", ("s",)),
    ("SELECT ?o WHERE { GRAPH ?g { ?s rel:r0 ?o } } LIMIT 1", ("s",)),
    ("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s rel:r0 ?o } }", ("s",)),
    ("SELECT ?o WHERE { GRAPH ?g { ?s rel:r0 ?o FILTER(isIRI(?o)) } }", ("s",)),
    ("SELECT ?o WHERE { GRAPH ?g { ?s rel:r0 ?o OPTIONAL { ?o rel:r1 ?x } } }", ("s",)),
    ("SELECT ?x WHERE { ?s rel:r0/rel:r1 ?x }", ("s",)),
    ("SELECT ?o WHERE { GRAPH ?g { ?s rel:r0 ?o } }", ()),  # no subject or object bound: a scan
    ("SELECT ?s ?o WHERE { ?s rel:r0 [] }", ("s",)),
    ("SELECT ?s WHERE { GRAPH ?g { ?x rel:r0 ?o } }", ("s", "o")),  # ?s bound but in no pattern
    ("SELECT ?s WHERE { ?s rdf:type ?o }", ("s",)),  # rdflib predeclares rdf:, Oxigraph does not
]


def _quads(seed: int) -> list[Quad]:
    rng = random.Random(seed)
    quads: list[Quad] = []
    for _ in range(300):
        s = rng.choice(ENTITIES)
        p = rng.choice(RELATIONS)
        o = rng.choice(ENTITIES) if rng.random() < 0.7 else rng.choice(LITERALS)
        quads.append((s, p, o, rng.choice(GRAPHS)))
    quads.append((ENTITIES[0], RELATIONS[0], ENTITIES[0], GRAPHS[0]))  # ?s p ?s
    for s in ENTITIES[:6]:  # a graph named by an object in it (?g twice), and one only mentioned
        quads += [(s, RELATIONS[2], GRAPHS[2], GRAPHS[2]), (s, RELATIONS[2], GRAPHS[3], GRAPHS[2])]
    return quads


@pytest.fixture(scope="module")
def store() -> Iterator[OxigraphTripleStore]:
    store = OxigraphTripleStore()
    store.add(_quads(0))
    yield store
    store.close()


def _value(name: str, rng: random.Random) -> Identifier:
    if name == "g":
        return rng.choice(GRAPHS)
    if name == "p":
        return rng.choice(RELATIONS)
    return rng.choice([*ENTITIES, *LITERALS]) if name == "o" else rng.choice(ENTITIES)


def _both(store: OxigraphTripleStore, sparql: str, bindings: dict) -> tuple[list, list]:
    store.pattern_lookups = True
    fast = store.query(sparql, bindings)
    store.pattern_lookups = False
    try:
        engine = store.query(sparql, bindings)
    finally:
        store.pattern_lookups = True
    return fast, engine


@pytest.mark.parametrize(("sparql", "names"), PLAIN)
def test_lookups_answer_what_the_engine_answers(store: OxigraphTripleStore, sparql: str, names: tuple) -> None:
    text = PREFIXES + "PREFIX rel: <https://example.org/rel/>\nPREFIX xsd: <" + str(XSD) + ">\n" + sparql
    assert pattern_plan(text, frozenset(names)) is not None  # the lookups, not the engine, answer it
    rng = random.Random(1)
    answered = 0
    for _ in range(60):
        bindings = {name: _value(name, rng) for name in names}
        fast, engine = _both(store, text, bindings)
        assert _sorted_rows(fast) == _sorted_rows(engine), bindings
        answered += bool(fast) and fast != [(Literal(False),)]
    assert answered > 0  # the comparison is not only of empty answers


@pytest.mark.parametrize(("sparql", "names"), NOT_PLAIN)
def test_other_queries_go_to_the_engine(sparql: str, names: tuple) -> None:
    text = PREFIXES + sparql
    assert pattern_plan(text, frozenset(names)) is None


def test_a_literal_bound_as_subject_matches_nothing(store: OxigraphTripleStore) -> None:
    text = PREFIXES + "SELECT ?o WHERE { GRAPH ?g { ?s ?p ?o } }"
    assert store.query(text, {"s": Literal("x")}) == []


def test_canonical_literals_come_back_as_the_engine_gives_them(store: OxigraphTripleStore) -> None:
    text = PREFIXES + "SELECT ?o WHERE { GRAPH ?g { ?s ?p ?o } }"
    integers = {
        str(row[0])
        for entity in ENTITIES
        for row in store.query(text, {"s": entity})
        if isinstance(row[0], Literal) and row[0].datatype == XSD.integer
    }
    assert integers == {"7"}  # "007" was stored by value


def test_rejected_prefix_still_raises_query_error(store: OxigraphTripleStore) -> None:
    with pytest.raises(QueryError):
        store.query("SELECT ?o WHERE { ?s rdf:type ?o }", {"s": ENTITIES[0]})


def test_a_triple_left_in_one_graph_is_still_found_by_graph_variable_lookups() -> None:
    store = OxigraphTripleStore()
    s, p, o = ENTITIES[0], RELATIONS[0], ENTITIES[1]
    store.add([(s, p, o, GRAPHS[0]), (s, p, o, GRAPHS[1])])
    store.remove([(s, p, o, GRAPHS[0])])
    text = "SELECT ?g WHERE { GRAPH ?g { ?s <" + str(p) + "> ?o } }"
    assert pattern_plan(text, frozenset({"s"})) is not None
    assert store.query(text, {"s": s}) == [(GRAPHS[1],)]
    store.remove([(s, p, o, GRAPHS[1])])
    assert store.query(text, {"s": s}) == []


def test_the_default_graph_probe_relies_on_the_merge_and_is_off_without_it() -> None:
    import pyoxigraph as ox

    raw = ox.Store()  # named graphs only: not how OxigraphTripleStore keeps a store
    raw.add(
        ox.Quad(
            ox.NamedNode(str(ENTITIES[0])),
            ox.NamedNode(str(RELATIONS[0])),
            ox.Literal("v"),
            ox.NamedNode(str(GRAPHS[0])),
        )
    )
    plan = pattern_plan("SELECT ?o WHERE { GRAPH ?g { ?s <" + str(RELATIONS[0]) + "> ?o } }", frozenset({"s"}))
    assert plan is not None
    bound = {"s": ox.NamedNode(str(ENTITIES[0]))}
    assert plan.run(raw, bound) == [(ox.Literal("v"),)]
    assert plan.run(raw, bound, merged=True) == []  # the probe trusts the default graph to be the merge
