"""The OWL relation schema: the packaged world file and malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg import REL, RelationSpec, Schema, load_schema
from tests.conftest import REPO
from tools.errors import ConfigError, InvalidInputError

PREFIXES = """
@prefix rel:  <https://factagent.dev/rel/> .
@prefix owl:  <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix wd:   <http://www.wikidata.org/prop/direct/> .
@prefix fa:   <https://factagent.dev/ns#> .
"""
A = "rel:a a owl:ObjectProperty ; rdfs:label 'A' ; "


@pytest.fixture(scope="module")
def schema() -> Schema:
    return load_schema()


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "schema.ttl"
    path.write_text(PREFIXES + body, encoding="utf-8")
    return path


def test_world_relations_match_the_world_source(schema: Schema) -> None:
    source = json.loads((REPO / "eval/world/source/relations.json").read_text(encoding="utf-8"))["relations"]
    assert len(source) == 17
    for relation in source:
        spec = schema.relation(relation["id"])
        assert spec.functional is relation["functional"], relation["id"]
        assert spec.iri == str(REL) + relation["id"]


def test_wikidata_matches_and_lookups(schema: Schema) -> None:
    expected = {
        "person_father": "P22",
        "person_mother": "P25",
        "spouse": "P26",
        "doctoral_advisor": "P184",
        "doctoral_student": "P185",
        "notable_work": "P800",
        "creator": "P170",
        "child": "P40",
        "sibling": "P3373",
        "country_of_citizenship": "P27",
        "position_held": "P39",
        "applies_to_jurisdiction": "P1001",
        "language_of_work": "P407",
        "languages_spoken": "P1412",
    }
    for rid, pid in expected.items():
        spec = schema.relation(rid)
        assert spec.wikidata == pid
        assert schema.relation(pid) is spec
        assert schema.relation(spec.iri) is spec
    assert "P170" in schema and "nope" not in schema
    with pytest.raises(InvalidInputError, match="unknown relation"):
        schema.relation("nope")


def test_inverse_rules_of_the_pitfalls_reverse_set(schema: Schema) -> None:
    # P22>P40 and P25>P40 are one-way: father ⊑ child⁻¹, but a child fact does not entail a father fact.
    assert schema.relation("person_father").inverse_of_super == ("child",)
    assert schema.relation("person_mother").inverse_of_super == ("child",)
    assert {s.id for s in schema.inverse_sources("child")} == {"person_father", "person_mother"}
    assert schema.relation("child").inverses == ()
    # P185>P184 and P800>P170 are true inverses, recorded on both sides.
    assert schema.relation("doctoral_student").inverses == ("doctoral_advisor",)
    assert schema.relation("doctoral_advisor").inverses == ("doctoral_student",)
    assert schema.relation("notable_work").inverses == ("creator",)
    assert schema.relation("creator").inverses == ("notable_work",)
    assert schema.relation("spouse").symmetric and schema.relation("sibling").symmetric
    assert not schema.relation("child").symmetric


def test_composition_rules_of_the_pitfalls_composite_set(schema: Schema) -> None:
    rules = {
        "P40&P25>P26",
        "P25&P26>P22",
        "P39&P1001>P27",
        "P22&P40>P3373",
        "P40&P22>P26",
        "P22&P26>P25",
        "P800&P407>P1412",
    }
    found = set()
    for spec in schema.relations:
        for a, b in spec.chains:
            found.add(f"{schema.relation(a).wikidata}&{schema.relation(b).wikidata}>{spec.wikidata}")
    assert found == rules


def test_functional_pitfalls_relations(schema: Schema) -> None:
    assert schema.relation("applies_to_jurisdiction").functional
    assert schema.relation("language_of_work").functional
    for rid in ("child", "sibling", "country_of_citizenship", "position_held", "languages_spoken", "notable_work"):
        assert not schema.relation(rid).functional, rid


def test_a_small_file_is_read_with_every_axiom(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        rel:a a owl:ObjectProperty, owl:FunctionalProperty ; rdfs:label "A" ; skos:exactMatch wd:P1 ;
            owl:propertyChainAxiom ( rel:b rel:c ) .
        rel:b a owl:ObjectProperty, owl:SymmetricProperty ; rdfs:label "B" ; owl:inverseOf rel:b .
        rel:c a owl:ObjectProperty ; rdfs:label "C" ; rdfs:subPropertyOf [ owl:inverseOf rel:a ] .
        """,
    )
    schema = load_schema(path)
    assert schema.ids == ("a", "b", "c")
    assert schema.relation("P1") == RelationSpec(
        id="a", iri=str(REL) + "a", label="A", functional=True, chains=(("b", "c"),), wikidata="P1"
    )
    assert schema.relation("b").symmetric and schema.relation("b").inverses == ("b",)
    assert schema.relation("c").inverse_of_super == ("a",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rel:a a owl:ObjectProperty ; rdfs:label 'A' ", "not valid Turtle"),
        (A + "owl:inverseOf rel:zz .", "not a declared"),
        (A + "owl:propertyChainAxiom ( rel:a rel:zz ) .", "not a declared"),
        (A + "rdfs:subPropertyOf [ owl:inverseOf rel:zz ] .", "not a declared"),
        (A + "owl:propertyChainAxiom ( rel:a rel:a rel:a ) .", "only 2"),
        (A + "rdfs:subPropertyOf rel:a .", "subPropertyOf must be"),
        ("rel:a a owl:ObjectProperty .", "exactly one rdfs:label"),
        ("<http://example.org/x> a owl:ObjectProperty ; rdfs:label 'X' .", "not in the rel: namespace"),
        ("rel:zz a owl:FunctionalProperty . rel:a a owl:ObjectProperty ; rdfs:label 'A' .", "not a declared"),
        (
            "rel:a a owl:ObjectProperty ; rdfs:label 'A' ; skos:exactMatch wd:P1 . "
            "rel:b a owl:ObjectProperty ; rdfs:label 'B' ; skos:exactMatch wd:P1 .",
            "two relations",
        ),
        ("", "declares no owl:ObjectProperty"),
        (A + "rdfs:domain <http://example.org/Company> .", "fa: namespace"),
        (A + "rdfs:domain fa:Company, fa:Person .", "at most one"),
        ("rel:a a owl:ObjectProperty ; rdfs:label 'A' . [] a owl:AllDisjointClasses ; owl:members ( fa:X ) .", "two"),
        (
            "rel:a a owl:ObjectProperty ; rdfs:label 'A' . [] a owl:AllDisjointClasses ; owl:members ( rel:a fa:X ) .",
            "fa:",
        ),
    ],
)
def test_malformed_schema_files_are_rejected_clearly(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_schema(_write(tmp_path, body))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_schema(tmp_path / "absent.ttl")


def test_classes_and_disjointness_are_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        rel:a a owl:ObjectProperty ; rdfs:label "A" ; rdfs:domain fa:Company ; rdfs:range fa:Person .
        rel:b a owl:ObjectProperty ; rdfs:label "B" .
        [] a owl:AllDisjointClasses ; owl:members ( fa:Company fa:Person fa:City ) .
        """,
    )
    schema = load_schema(path)
    assert (schema.relation("a").domain, schema.relation("a").range) == ("Company", "Person")
    assert schema.relation("b").domain is None and schema.relation("b").range is None
    assert schema.disjoint("Company", "City") and not schema.disjoint("Company", "Company")
    assert not schema.disjoint("Company", "Star")  # in no group together
