"""Typed conflict detection: functional, inverse and composition rules, the three Pitfalls examples, as_of."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from kg import Conflict, ConflictKind, KnowledgeGraph, MemoryTripleStore, Provenance, Schema, load_schema
from tools.base import Triple

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=365)


@pytest.fixture(scope="module")
def schema() -> Schema:
    return load_schema()


@pytest.fixture
def kg(schema: Schema) -> KnowledgeGraph:
    return KnowledgeGraph(MemoryTripleStore(), schema, clock=lambda: LATER)


def fact(
    kg: KnowledgeGraph,
    s: str,
    r: str,
    o: str,
    *,
    at: datetime = T0,
    edit: str = "load",
    replaces: str | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> None:
    kg.add(Triple(s, r, o), Provenance("test", edit_id=edit), valid_from=at, replaces=replaces, aliases=aliases)


def summary(conflicts: list[Conflict]) -> list[tuple[ConflictKind, tuple[str, str, str], str]]:
    return [(c.kind, (c.existing.subject, c.existing.relation, c.existing.object), c.rule) for c in conflicts]


# -- functional ---------------------------------------------------------------------------------------


def test_functional_relation_conflicts_with_another_object(kg: KnowledgeGraph) -> None:
    fact(kg, "Acme", "company_ceo", "Ann")
    (conflict,) = kg.conflicts(Triple("Acme", "company_ceo", "Bob"))
    assert conflict.kind is ConflictKind.FUNCTIONAL
    assert conflict.candidate == Triple("Acme", "company_ceo", "Bob")
    assert conflict.existing == Triple("Acme", "company_ceo", "Ann")
    assert [a.triple for a in conflict.evidence] == [conflict.existing]
    assert conflict.rule == "company_ceo is functional"
    assert kg.conflicts(Triple("Acme", "company_ceo", "Ann")) == []
    assert kg.conflicts(Triple("Other", "company_ceo", "Bob")) == []


def test_single_valued_makes_any_relation_functional_for_an_edit(kg: KnowledgeGraph) -> None:
    fact(kg, "Goya", "notable_work", "A")
    assert kg.conflicts(Triple("Goya", "notable_work", "B")) == []
    assert summary(kg.conflicts(Triple("Goya", "notable_work", "B"), single_valued=True)) == [
        (ConflictKind.FUNCTIONAL, ("Goya", "notable_work", "A"), "notable_work is single-valued for this edit")
    ]


def test_an_alias_of_the_existing_object_is_no_conflict(kg: KnowledgeGraph) -> None:
    fact(kg, "Acme", "company_ceo", "Ann Smith", aliases={"Ann Smith": ["Ann"]})
    assert kg.conflicts(Triple("Acme", "company_ceo", "Ann")) == []


def test_coverage_two_edits_on_the_same_subject_and_relation(kg: KnowledgeGraph) -> None:
    # Pitfalls coverage: Jacqueline Arnaud's doctoral student M'henni -> Cromme -> Prüfer.
    fact(kg, "Jacqueline Arnaud", "doctoral_student", "Mansour M'henni")
    edit_at = T0 + timedelta(days=30)
    cand1 = Triple("Jacqueline Arnaud", "doctoral_student", "Ludwig Cromme")
    assert summary(kg.conflicts(cand1, single_valued=True)) == [
        (
            ConflictKind.FUNCTIONAL,
            ("Jacqueline Arnaud", "doctoral_student", "Mansour M'henni"),
            "doctoral_student is single-valued for this edit",
        )
    ]
    fact(
        kg,
        *("Jacqueline Arnaud", "doctoral_student", "Ludwig Cromme"),
        at=edit_at,
        edit="e1",
        replaces="Mansour M'henni",
    )
    cand2 = Triple("Jacqueline Arnaud", "doctoral_student", "Heinz Prüfer")
    now = kg.conflicts(cand2, single_valued=True)
    assert [c.existing.object for c in now] == ["Ludwig Cromme"]  # the superseded one no longer counts
    before = kg.conflicts(cand2, single_valued=True, as_of=edit_at - timedelta(seconds=1))
    assert [c.existing.object for c in before] == ["Mansour M'henni"]
    assert kg.conflicts(cand2, single_valued=True, as_of=T0 - timedelta(days=1)) == []


# -- inverse -----------------------------------------------------------------------------------------


def test_reverse_pitfalls_example_goya(kg: KnowledgeGraph) -> None:
    # Goya's notable work is edited to a new painting; then the painting's creator is set to someone else.
    fact(kg, "Francisco de Goya", "notable_work", "The Second of May 1808")
    fact(
        kg,
        "Francisco de Goya",
        "notable_work",
        "landscape with fighting bulls",
        at=T0 + timedelta(days=1),
        edit="e1",
        replaces="The Second of May 1808",
    )
    candidate = Triple("landscape with fighting bulls", "creator", "Richard Strauss")
    (conflict,) = kg.conflicts(candidate)  # creator is functional: no single_valued needed
    assert conflict.kind is ConflictKind.INVERSE
    assert conflict.existing == Triple("landscape with fighting bulls", "creator", "Francisco de Goya")
    assert [a.triple for a in conflict.evidence] == [
        Triple("Francisco de Goya", "notable_work", "landscape with fighting bulls")
    ]
    assert conflict.rule == "notable_work>creator"
    assert kg.conflicts(Triple("landscape with fighting bulls", "creator", "Francisco de Goya")) == []
    # Before the edit the painting was nobody's notable work.
    assert kg.conflicts(candidate, as_of=T0 + timedelta(hours=1)) == []
    # The old painting is no longer entailed to be Goya's.
    assert kg.conflicts(Triple("The Second of May 1808", "creator", "Richard Strauss")) == []


def test_candidate_entailing_a_clash_with_a_functional_inverse(kg: KnowledgeGraph) -> None:
    fact(kg, "Las Meninas", "creator", "Diego Velázquez")
    assert summary(kg.conflicts(Triple("Francisco de Goya", "notable_work", "Las Meninas"))) == [
        (ConflictKind.INVERSE, ("Las Meninas", "creator", "Diego Velázquez"), "notable_work>creator")
    ]
    assert kg.conflicts(Triple("Diego Velázquez", "notable_work", "Las Meninas")) == []


def test_true_inverse_doctoral_student_and_advisor(kg: KnowledgeGraph) -> None:
    fact(kg, "Bernard Bourgeois", "doctoral_student", "Quentin Meillassoux")
    assert summary(kg.conflicts(Triple("Quentin Meillassoux", "doctoral_advisor", "L. Adrienne Cupples"))) == [
        (
            ConflictKind.INVERSE,
            ("Quentin Meillassoux", "doctoral_advisor", "Bernard Bourgeois"),
            "doctoral_student>doctoral_advisor",
        )
    ]


def test_one_way_rule_father_implies_child_but_not_back(kg: KnowledgeGraph) -> None:
    # Pitfalls P22>P40: Marko's father edited to the Duke; then the Duke's child set to someone else.
    fact(kg, "Marko Smoler", "person_father", "Jan Arnošt Smoler")
    fact(kg, "Marko Smoler", "person_father", "Duke of Buccleuch", at=T0 + timedelta(days=1), edit="e1")
    candidate = Triple("Duke of Buccleuch", "child", "Heinrich von Hessen-Darmstadt")
    assert kg.conflicts(candidate) == []  # child is not functional
    assert summary(kg.conflicts(candidate, single_valued=True)) == [
        (ConflictKind.INVERSE, ("Duke of Buccleuch", "child", "Marko Smoler"), "person_father>child")
    ]
    # child ⊑ father⁻¹ does not hold (a child fact does not say who is the father): no entailed clash.
    fact(kg, "Someone", "child", "Ann")
    assert kg.conflicts(Triple("Ann", "person_father", "Other")) == []
    # Nor the other way round: the candidate's entailed (Other, child, Ann) meets no functional relation.
    assert kg.conflicts(Triple("Ann", "person_father", "Other"), single_valued=True) == []


def test_symmetric_relation_both_directions(kg: KnowledgeGraph) -> None:
    fact(kg, "Ann", "spouse", "Bob")
    assert summary(kg.conflicts(Triple("Bob", "spouse", "Cid"))) == [
        (ConflictKind.INVERSE, ("Bob", "spouse", "Ann"), "spouse>spouse")
    ]
    assert summary(kg.conflicts(Triple("Cid", "spouse", "Ann"))) == [
        (ConflictKind.INVERSE, ("Ann", "spouse", "Bob"), "spouse>spouse")
    ]
    assert kg.conflicts(Triple("Bob", "spouse", "Ann")) == []


# -- composition -------------------------------------------------------------------------------------


def test_composite_pitfalls_example_citizenship(kg: KnowledgeGraph) -> None:
    fact(kg, "Irwin Cotler", "position_held", "member of the House of Commons of Canada")
    fact(kg, "member of the House of Commons of Canada", "applies_to_jurisdiction", "Canada")
    edit_at = T0 + timedelta(days=1)
    fact(kg, "member of the House of Commons of Canada", "applies_to_jurisdiction", "Hungary", at=edit_at, edit="e1")
    candidate = Triple("Irwin Cotler", "country_of_citizenship", "Republic of Ireland")
    assert kg.conflicts(candidate) == []  # citizenship is not functional
    (conflict,) = kg.conflicts(candidate, single_valued=True)
    assert conflict.kind is ConflictKind.COMPOSITION
    assert conflict.existing == Triple("Irwin Cotler", "country_of_citizenship", "Hungary")
    assert [a.triple.object for a in conflict.evidence] == ["member of the House of Commons of Canada", "Hungary"]
    assert conflict.rule == "position_held&applies_to_jurisdiction>country_of_citizenship"
    before = kg.conflicts(candidate, single_valued=True, as_of=edit_at - timedelta(seconds=1))
    assert [c.existing.object for c in before] == ["Canada"]
    assert kg.conflicts(Triple("Irwin Cotler", "country_of_citizenship", "Hungary"), single_valued=True) == []


def test_composition_into_a_functional_relation_needs_no_flag(kg: KnowledgeGraph) -> None:
    # P40&P25>P26: x child y, y mother z => x spouse z; spouse is functional.
    fact(kg, "Tom", "child", "Kid")
    fact(kg, "Kid", "person_mother", "Mia")
    assert summary(kg.conflicts(Triple("Tom", "spouse", "Zoe"))) == [
        (ConflictKind.COMPOSITION, ("Tom", "spouse", "Mia"), "child&person_mother>spouse")
    ]


def test_composition_never_entails_the_subject_itself(kg: KnowledgeGraph) -> None:
    # P22&P40>P3373: x father y, y child z => x sibling z, and z may be x.
    fact(kg, "Ann", "person_father", "Carl")
    fact(kg, "Carl", "child", "Ann")
    fact(kg, "Carl", "child", "Ben")
    found = kg.conflicts(Triple("Ann", "sibling", "Dan"), single_valued=True)
    assert summary(found) == [(ConflictKind.COMPOSITION, ("Ann", "sibling", "Ben"), "person_father&child>sibling")]


def test_conflicts_write_nothing(kg: KnowledgeGraph) -> None:
    fact(kg, "Acme", "company_ceo", "Ann")
    before = sorted(kg.store.quads(), key=str)
    kg.conflicts(Triple("Acme", "company_ceo", "Brand New Person"), single_valued=True)
    assert sorted(kg.store.quads(), key=str) == before
    with pytest.raises(ValueError, match="unknown relation"):
        kg.conflicts(Triple("Acme", "nope", "Bob"))
