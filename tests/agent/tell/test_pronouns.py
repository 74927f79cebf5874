"""Pronouns that stand for a name said earlier in the message; a pronoun is never stored as a name."""

from __future__ import annotations

import pytest

from agent.tell import TemplateInterpreter, load_statement_phrasings
from agent.tell._pronouns import has_pronoun, is_pronoun, with_antecedent
from kg import Entity, EntityLinker, KnowledgeGraph, MemoryTripleStore, Provenance, entity_iri, load_schema
from memory import Triple

FACTS = [Triple("Acura TL", "product_by_company", "Honda"), Triple("AOL", "company_ceo", "Tim Armstrong")]


@pytest.fixture(scope="module")
def interpreter() -> TemplateInterpreter:
    kg = KnowledgeGraph(MemoryTripleStore(), load_schema())
    for i, t in enumerate(FACTS):
        kg.add(t, Provenance("world", edit_id=f"e-{i:08x}"))
    names = sorted({n for t in FACTS for n in (t.subject, t.object)} | {"Toyota", "Jane Roe"})
    linker = EntityLinker([Entity(str(entity_iri(n)), n) for n in names])
    return TemplateInterpreter(load_schema(), linker, kg, load_statement_phrasings())


def _triples(interpreter: TemplateInterpreter, text: str) -> list[tuple[str, str, str]]:
    return [(c.triple.subject, c.triple.relation, c.triple.object) for c in interpreter.interpret(text).claims]


def test_helpers() -> None:
    assert has_pronoun("It is made by Toyota.") and not has_pronoun("Italy is big.")
    assert with_antecedent("Its CEO is Jane Roe.", "AOL") == ["AOL's CEO is Jane Roe."]
    assert with_antecedent("Jane Roe runs it.", "AOL") == ["Jane Roe runs AOL."]
    assert with_antecedent("Jane Roe met her", "Ann") == ["Jane Roe met Ann", "Jane Roe met Ann's"]
    assert with_antecedent("What is her job?", "Ann") == ["What is Ann's job?", "What is Ann job?"]
    assert is_pronoun(" It ") and is_pronoun("this company") and not is_pronoun("Italy")


def test_a_pronoun_stands_for_the_earlier_name_its_relation_fits(interpreter: TemplateInterpreter) -> None:
    # "it" is made by a company: the Acura TL (a product), not Honda (a company), though Honda is said first
    assert _triples(interpreter, "Honda no longer makes the Acura TL; it is a product made by Toyota now.") == [
        ("Acura TL", "product_by_company", "Toyota")
    ]
    # the most recent name (Honda) is a company, which no product relation takes: the Acura TL is
    assert _triples(interpreter, "The Acura TL sells well for Honda; it is a product made by Toyota.") == [
        ("Acura TL", "product_by_company", "Toyota")
    ]
    assert _triples(interpreter, "Toyota is big. Its CEO is Jane Roe.") == [("Toyota", "company_ceo", "Jane Roe")]


def test_a_pronoun_with_nothing_to_stand_for_is_not_a_name(interpreter: TemplateInterpreter) -> None:
    assert _triples(interpreter, "It is a product made by Toyota.") == []
    assert interpreter.interpret("It is a product made by Toyota.").kind == "free_text"
