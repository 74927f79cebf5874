"""The contract every :class:`kg.TripleStore` passes: subclass :class:`TripleStoreContract`, override ``store``.

Each backend's test module (memory, SQLite, remote SPARQL endpoint) runs the same tests; query answers are
also compared with :class:`kg.MemoryTripleStore` loaded with the same quads, so ``GRAPH <g>``, ``GRAPH ?g``,
the union default graph and property paths mean the same everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from itertools import product
from types import MappingProxyType

import pytest
from rdflib import XSD, BNode, Literal, URIRef
from rdflib.term import Node

from kg._memory_store import MemoryTripleStore
from kg._store import Quad, TripleStore
from tools.errors import InvalidInputError, QueryError

EX = "https://example.org/"
A, B, C, D = (URIRef(f"{EX}entity/{name}") for name in "ABCD")
P1, P2, KNOWS, NAME, AGE = (URIRef(f"{EX}rel/{name}") for name in ("p1", "p2", "knows", "name", "age"))
G1, G2, G3 = (URIRef(f"{EX}graph/{name}") for name in ("g1", "g2", "g3"))

SAMPLE: list[Quad] = [
    (A, P1, B, G1),
    (B, P2, C, G1),
    (A, P1, B, G2),  # the same triple in a second graph
    (C, P2, Literal("end"), G2),
    (A, NAME, Literal("Ann", lang="en"), G3),
    (B, NAME, Literal("Bo"), G3),
    (A, KNOWS, B, G1),
    (B, KNOWS, C, G1),
    (C, KNOWS, D, G1),
    (D, AGE, Literal(42), G2),
]

PREFIXES = f"PREFIX ex: <{EX}entity/>\nPREFIX rel: <{EX}rel/>\nPREFIX g: <{EX}graph/>\n"
REFERENCE_QUERIES = [
    "SELECT ?s ?o WHERE { ?s rel:p1 ?o }",
    "SELECT ?s ?p ?o WHERE { ?s ?p ?o }",
    "SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }",
    "SELECT ?s ?o WHERE { GRAPH g:g1 { ?s ?p ?o } }",
    "SELECT ?g WHERE { GRAPH ?g { ?s rel:p1 ?o . ?o rel:p2 ?x } }",
    "SELECT ?x WHERE { GRAPH g:g1 { ex:A rel:knows+ ?x } }",
    "SELECT ?x WHERE { GRAPH g:g1 { ?s rel:p1/rel:p2 ?x } }",
    "SELECT ?g ?x WHERE { GRAPH ?g { ?s rel:p1/rel:p2 ?x } }",
    "SELECT ?x WHERE { ?s rel:p1/rel:p2 ?x }",
    "SELECT ?s ?n WHERE { ?s rel:knows ?o OPTIONAL { ?s rel:name ?n } }",
    "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "SELECT ?g ?o WHERE { GRAPH ?g { ?s ?p ?o FILTER(isLiteral(?o)) } }",
    "SELECT DISTINCT ?s WHERE { GRAPH ?g1 { ?s rel:p1 ?o } GRAPH ?g2 { ?o rel:p2 ?x } }",
    "SELECT ?g ?o WHERE { GRAPH ?g { ?s ?p ?o } FILTER(?g = g:g2) }",
    "SELECT ?g WHERE { GRAPH ?g { ?g ?p ?o } }",
    "SELECT ?s WHERE { ?s ?p ?s }",
    "SELECT ?g ?s WHERE { GRAPH ?g { ?s rel:p1 ?o OPTIONAL { ?o rel:p2 ?x } } }",
    'ASK { GRAPH g:g3 { ?s rel:name "Ann"@en } }',
    'ASK { GRAPH g:g1 { ?s rel:name "Ann"@en } }',
]

INJECTIONS = [
    'x" } ; DROP ALL ; #',
    '"> } INSERT DATA { <urn:a> <urn:b> <urn:c> } #',
    'x"""\n} ; DROP ALL ; #',
    "x' } ; CLEAR ALL ; #",
]

UNICODE_LITERALS: list[Literal] = [
    Literal("Zoë Çelik-Ström"),
    Literal("北京市"),
    Literal("مرحبا"),
    Literal("emoji 😀 and combining é"),
    Literal("line one\nline two\ttab \\ backslash \"quoted\" 'single'"),
    Literal("Ann", lang="en"),
    Literal("Anne", lang="fr-CA"),
    Literal("2024-02-29T12:00:00+00:00", datatype=XSD.dateTime),
    Literal(7),
    Literal(""),
    Literal("typed", datatype=XSD.string),
]


def _identical(found: Literal, literal: Literal) -> bool:
    """The same rdflib term: lexical form, language and datatype all equal."""
    return found == literal and (found.language, found.datatype) == (literal.language, literal.datatype)


def _same_rdf_term(found: Literal, literal: Literal) -> bool:
    """The same RDF 1.1 term: equal value, datatype (a simple literal is xsd:string) and language (any case)."""

    def kind(term: Literal) -> tuple[object, object]:
        if term.language:
            return term.language.lower(), None
        return None, term.datatype or XSD.string

    if kind(found) != kind(literal):
        return False
    return bool(found.toPython() == literal.toPython())


def _sorted_rows(rows: Sequence[Sequence[Node | None]]) -> list[tuple[str, ...]]:
    return sorted(tuple(repr(v) for v in row) for row in rows)


class TripleStoreContract:
    """Tests every TripleStore must pass. Subclasses override the ``store`` fixture (an empty store)."""

    large_batch = 10_000
    large_batch_seconds = 10.0
    reads_own_writes_in_transaction = True  # False where writes are buffered until the block exits
    # True where the store keeps literals by value (Oxigraph): a literal comes back as the same RDF 1.1 term in
    # canonical lexical form ("+00:00" as "Z", "x"^^xsd:string as "x"); every other check stays exact.
    canonical_literals = False

    @pytest.fixture
    def store(self) -> Iterator[TripleStore]:
        raise NotImplementedError("override the store fixture")

    @pytest.fixture
    def loaded(self, store: TripleStore) -> TripleStore:
        store.add(SAMPLE)
        return store

    # -- add / remove / quads -------------------------------------------------------------------------

    def test_satisfies_protocol_and_starts_empty(self, store: TripleStore) -> None:
        assert isinstance(store, TripleStore)
        assert len(store) == 0
        assert list(store.quads()) == []
        assert store.query("ASK { ?s ?p ?o }") == [(Literal(False),)]

    @pytest.mark.parametrize("mask", list(product([False, True], repeat=4)))
    def test_quads_every_pattern(self, loaded: TripleStore, mask: tuple[bool, bool, bool, bool]) -> None:
        for reference in SAMPLE:
            pattern = [term if bound else None for term, bound in zip(reference, mask, strict=True)]
            expected = {q for q in SAMPLE if all(p is None or p == t for p, t in zip(pattern, q, strict=True))}
            s, p, o, g = pattern
            assert set(loaded.quads(s, p, o, g)) == expected, pattern  # type: ignore[arg-type]

    def test_quads_with_unknown_terms_match_nothing(self, loaded: TripleStore) -> None:
        assert list(loaded.quads(subject=URIRef(f"{EX}entity/nobody"))) == []
        assert list(loaded.quads(obj=Literal("Ann"))) == []  # language tag differs
        assert list(loaded.quads(subject=A, graph=URIRef(f"{EX}graph/none"))) == []
        assert list(loaded.quads(obj=Literal("42"))) == []  # untyped vs xsd:integer

    def test_add_is_idempotent(self, loaded: TripleStore) -> None:
        loaded.add(SAMPLE + SAMPLE[:3])
        assert len(loaded) == len(SAMPLE)
        assert set(loaded.quads()) == set(SAMPLE)

    def test_remove_exact_quads_and_ignore_missing(self, loaded: TripleStore) -> None:
        loaded.remove([(A, P1, B, G1), (A, P1, C, G1), (D, AGE, Literal("42"), G2)])
        assert set(loaded.quads()) == set(SAMPLE) - {(A, P1, B, G1)}
        assert list(loaded.quads(A, P1, B)) == [(A, P1, B, G2)]  # same triple, other graph, kept
        assert len(loaded) == len(SAMPLE) - 1
        loaded.remove([])
        assert len(loaded) == len(SAMPLE) - 1

    def test_union_default_graph_keeps_a_triple_another_graph_still_holds(self, loaded: TripleStore) -> None:
        union = PREFIXES + "SELECT ?o WHERE { ?s rel:p1 ?o }"
        loaded.remove([(A, P1, B, G1)])
        assert loaded.query(union, {"s": A}) == [(B,)]  # G2 still holds A p1 B
        assert loaded.query(PREFIXES + "ASK { ex:A rel:p1 ex:B }") == [(Literal(True),)]
        loaded.remove([(A, P1, B, G2)])
        assert loaded.query(union, {"s": A}) == []

    def test_len_counts_quads_not_triples(self, loaded: TripleStore) -> None:
        assert len(loaded) == len(SAMPLE) == len(set(SAMPLE))

    # -- transactions ---------------------------------------------------------------------------------

    def test_transaction_commits_together(self, loaded: TripleStore) -> None:
        new = (C, P1, D, G3)
        with loaded.transaction():
            loaded.add([new])
            loaded.remove([SAMPLE[0]])
        assert set(loaded.quads()) == (set(SAMPLE) - {SAMPLE[0]}) | {new}

    def test_transaction_rolls_back_when_block_raises(self, loaded: TripleStore) -> None:
        with pytest.raises(RuntimeError, match="boom"), loaded.transaction():
            loaded.add([(C, P1, D, G3), (D, P1, A, URIRef(f"{EX}graph/new"))])
            loaded.remove(SAMPLE[:4])
            raise RuntimeError("boom")
        assert set(loaded.quads()) == set(SAMPLE)
        assert len(loaded) == len(SAMPLE)

    def test_reads_inside_a_transaction(self, loaded: TripleStore) -> None:
        new = (C, P1, D, G3)
        with loaded.transaction():
            loaded.add([new])
            seen = set(loaded.quads(subject=C, predicate=P1))
            asked = loaded.query(PREFIXES + "ASK { ex:C rel:p1 ex:D }")
        if self.reads_own_writes_in_transaction:
            assert seen == {new} and asked == [(Literal(True),)]
        else:
            assert seen == set() and asked == [(Literal(False),)]
        assert set(loaded.quads(subject=C, predicate=P1)) == {new}

    def test_failed_nested_transaction_undoes_only_its_own_writes(self, store: TripleStore) -> None:
        outer, inner = (A, P1, B, G1), (C, P1, D, G1)
        with store.transaction():
            store.add([outer])
            with pytest.raises(RuntimeError), store.transaction():
                store.add([inner])
                raise RuntimeError("inner fails")
        assert set(store.quads()) == {outer}

    def test_failed_outer_transaction_undoes_committed_inner_block(self, store: TripleStore) -> None:
        with pytest.raises(RuntimeError), store.transaction():
            with store.transaction():
                store.add([(A, P1, B, G1)])
            raise RuntimeError("outer fails")
        assert len(store) == 0

    # -- SPARQL ---------------------------------------------------------------------------------------

    def test_select_with_bindings(self, loaded: TripleStore) -> None:
        rows = loaded.query(PREFIXES + "SELECT ?o WHERE { ?s rel:p1 ?o }", {"s": A})
        assert rows == [(B,)]  # the union default graph lists a triple held by two graphs once
        rows = loaded.query(PREFIXES + "SELECT ?s WHERE { GRAPH ?g { ?s rel:name ?n } }", {"n": Literal("Bo")})
        assert rows == [(B,)]
        assert loaded.query(PREFIXES + "SELECT ?s WHERE { ?s rel:name ?n }", {"n": Literal("Ann")}) == []
        # any read-only mapping binds, not only a dict
        assert loaded.query(PREFIXES + "SELECT ?o WHERE { ?s rel:p1 ?o }", MappingProxyType({"s": A})) == [(B,)]

    def test_select_returns_none_for_unbound_optional(self, loaded: TripleStore) -> None:
        rows = loaded.query(PREFIXES + "SELECT ?s ?n WHERE { ?s rel:age ?a OPTIONAL { ?s rel:name ?n } }")
        assert rows == [(D, None)]

    def test_ask(self, loaded: TripleStore) -> None:
        assert loaded.query(PREFIXES + "ASK { ex:A rel:p1 ex:B }") == [(Literal(True),)]
        assert loaded.query(PREFIXES + "ASK { ex:B rel:p1 ex:A }") == [(Literal(False),)]
        assert loaded.query(PREFIXES + "ASK { ?s rel:p1 ?o }", {"o": D}) == [(Literal(False),)]

    def test_graph_iri_and_graph_variable_agree(self, loaded: TripleStore) -> None:
        by_variable = loaded.query("SELECT ?g ?s ?p ?o WHERE { GRAPH ?g { ?s ?p ?o } }")
        for graph in (G1, G2, G3):
            fixed = loaded.query(f"SELECT ?s ?p ?o WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}")
            assert _sorted_rows(fixed) == _sorted_rows([row[1:] for row in by_variable if row[0] == graph])
            assert len(fixed) == len(list(loaded.quads(graph=graph)))

    def test_property_paths_inside_a_named_graph(self, loaded: TripleStore) -> None:
        sequence = loaded.query(PREFIXES + "SELECT ?s ?o WHERE { GRAPH g:g1 { ?s rel:p1/rel:p2 ?o } }")
        assert sequence == [(A, C)]
        transitive = loaded.query(PREFIXES + "SELECT ?x WHERE { GRAPH g:g1 { ex:A rel:knows+ ?x } }")
        assert {row[0] for row in transitive} == {B, C, D}
        # g2 holds A p1 B but not B p2 C: a path does not leave its named graph
        assert loaded.query(PREFIXES + "SELECT ?o WHERE { GRAPH g:g2 { ?s rel:p1/rel:p2 ?o } }") == []

    @pytest.mark.parametrize("sparql", REFERENCE_QUERIES)
    def test_answers_match_the_reference_store(self, loaded: TripleStore, sparql: str) -> None:
        reference = MemoryTripleStore()
        reference.add(SAMPLE)
        expected = reference.query(PREFIXES + sparql)
        assert _sorted_rows(loaded.query(PREFIXES + sparql)) == _sorted_rows(expected)

    # -- hostile and malformed input ------------------------------------------------------------------

    @pytest.mark.parametrize("payload", INJECTIONS)
    def test_injection_in_bindings_changes_nothing_and_matches_nothing(self, loaded: TripleStore, payload: str) -> None:
        before = set(loaded.quads())
        value = Literal(payload)
        assert loaded.query(PREFIXES + "SELECT ?s WHERE { ?s rel:name ?n }", {"n": value}) == []
        assert loaded.query("ASK { GRAPH ?g { ?s ?p ?o } }", {"o": value}) == [(Literal(False),)]
        assert list(loaded.quads(obj=value)) == []
        assert set(loaded.quads()) == before
        # stored as data, it comes back verbatim and is the only thing added
        quad = (A, NAME, value, G3)
        loaded.add([quad])
        assert set(loaded.quads()) == before | {quad}
        assert loaded.query(PREFIXES + "SELECT ?s WHERE { ?s rel:name ?n }", {"n": value}) == [(A,)]

    @pytest.mark.parametrize(
        "bindings",
        [
            {"x) } ; DROP ALL ; #": A},
            {"?s": A},
            {"": A},
            {"s": BNode()},
            {"s": "https://example.org/entity/A"},
            {"s": URIRef("https://example.org/a b")},
            {"s": URIRef("https://example.org/a> } ; DROP ALL ; <b")},
            {"s": URIRef("https://example.org/lone-\ud800")},  # not valid Unicode
            {"s": URIRef("https://example.org/" + "a" * 100_000)},  # longer than MAX_TERM_CHARS
            [("s", A)],  # not a mapping
        ],
    )
    def test_bad_bindings_raise_query_error(self, loaded: TripleStore, bindings: dict) -> None:
        with pytest.raises(QueryError):
            loaded.query("SELECT ?o WHERE { ?s ?p ?o }", bindings)
        assert len(loaded) == len(SAMPLE)

    @pytest.mark.parametrize(
        "sparql",
        [
            "SELECT WHERE {",
            "SELEC ?s WHERE { ?s ?p ?o }",
            "",
            "SELECT ?s WHERE { ?s nope:p ?o }",
            "INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> <urn:c> } }",
            "DROP ALL",
            "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }",
            "DESCRIBE <urn:a>",
            "SELECT * FROM <http://127.0.0.1:9/data.ttl> WHERE { ?s ?p ?o }",
            "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
        ],
    )
    def test_malformed_or_unsupported_sparql_raises_query_error(self, loaded: TripleStore, sparql: str) -> None:
        with pytest.raises(QueryError):
            loaded.query(sparql)
        assert set(loaded.quads()) == set(SAMPLE)

    @pytest.mark.parametrize(
        "bad",
        [
            (BNode(), P1, B, G1),
            (A, P1, BNode(), G1),
            (URIRef("relative/iri"), P1, B, G1),
            (URIRef("https://example.org/a b"), P1, B, G1),
            (URIRef('https://example.org/a>"'), P1, B, G1),
            (A, P1, URIRef("https://example.org/x{y}"), G1),
            (Literal("subject"), P1, B, G1),
            (A, Literal("predicate"), B, G1),
            (A, P1, B, Literal("graph")),
            (A, P1, B, BNode()),
            (A, P1, B, URIRef("urn:x-rdflib:default")),
            (A, P1, Literal("lone \ud800 surrogate"), G1),
            (A, P1, B),
            ("https://example.org/s", P1, B, G1),
            "not a quad",
        ],
    )
    def test_bad_quads_are_rejected_and_nothing_is_written(self, store: TripleStore, bad: object) -> None:
        good = (A, P1, B, G1)
        for write in (store.add, store.remove):
            with pytest.raises(InvalidInputError):
                write([good, bad])  # type: ignore[list-item]
        assert len(store) == 0
        assert list(store.quads()) == []

    def test_bad_patterns_raise_invalid_input(self, loaded: TripleStore) -> None:
        with pytest.raises(InvalidInputError):
            list(loaded.quads(subject=BNode()))
        with pytest.raises(InvalidInputError):
            list(loaded.quads(graph=URIRef("not absolute")))
        with pytest.raises(InvalidInputError):
            loaded.add("a string")  # type: ignore[arg-type]

    # -- data ----------------------------------------------------------------------------------------

    def test_unicode_and_typed_literals_round_trip(self, store: TripleStore) -> None:
        quads = [(A, NAME, literal, G1) for literal in UNICODE_LITERALS]
        store.add(quads)
        same = _same_rdf_term if self.canonical_literals else _identical
        stored = list(store.quads())
        assert len(stored) == len(quads)
        for literal in UNICODE_LITERALS:
            [(found,)] = store.query("SELECT ?o WHERE { GRAPH ?g { ?s ?p ?o } }", {"o": literal})
            assert isinstance(found, Literal) and same(found, literal)
            [(s, p, o, g)] = store.quads(obj=literal)
            assert (s, p, g) == (A, NAME, G1) and isinstance(o, Literal) and same(o, literal)
            assert sum(isinstance(q[2], Literal) and same(q[2], literal) for q in stored) == 1

    def test_unicode_iris_round_trip(self, store: TripleStore) -> None:
        iri = URIRef(f"{EX}entity/Zoë_Ström_%5F北京")
        store.add([(iri, P1, iri, G1)])
        assert list(store.quads(subject=iri)) == [(iri, P1, iri, G1)]
        assert store.query("SELECT ?o WHERE { ?s ?p ?o }", {"s": iri}) == [(iri,)]

    def test_large_batch_in_one_transaction(self, store: TripleStore) -> None:
        n = self.large_batch
        quads: list[Quad] = [
            (URIRef(f"{EX}entity/e{i}"), URIRef(f"{EX}rel/r{i % 37}"), Literal(f"v{i}"), URIRef(f"{EX}graph/a-{i}"))
            for i in range(n)
        ]
        start = time.perf_counter()
        with store.transaction():
            store.add(quads)
        elapsed = time.perf_counter() - start
        assert len(store) == n
        assert elapsed < self.large_batch_seconds, f"{n} quads took {elapsed:.1f} s"
        probe = quads[n // 2]
        assert list(store.quads(probe[0], probe[1])) == [probe]
        store.remove(quads[: n // 2])
        assert len(store) == n - n // 2

    def test_concurrent_writers_in_threads(self, store: TripleStore) -> None:
        def write(worker: int) -> None:
            for i in range(25):
                store.add([(URIRef(f"{EX}entity/w{worker}"), P1, Literal(i), URIRef(f"{EX}graph/w{worker}-{i}"))])

        threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(store) == 6 * 25
        for worker in range(6):
            assert len(list(store.quads(subject=URIRef(f"{EX}entity/w{worker}")))) == 25
