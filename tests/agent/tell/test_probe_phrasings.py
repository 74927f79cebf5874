"""Forty sentences written by hand for stop 48 (issue 17) and read through the interpreter as the reader bench
reads (the linker and the types of the world's UNKNOWN facts, the schema). These are tests, not the held-out
evaluation set: they are not in the reader's training grammar nor in ``eval/``, and they were written without
looking at the held-out phrasings. Each sentence is pinned to what it must give: applied as the triple, offered
back as it ("Did you mean ...?") but not applied, or nothing applied (it states no current fact).
Sentences marked "fixed" were misread before stop 48's fixes."""

from __future__ import annotations

import pytest

from agent.tell import (
    Interpretation,
    ReaderModel,
    TemplateInterpreter,
    TokenEncoder,
    TripleReader,
    load_statement_phrasings,
)
from eval.agent_bench import world_linker
from eval.world import World
from kg import load_schema

Triple3 = tuple[str, str, str]

APPLIED = [
    ("Jane Roe heads AOL.", ("AOL", "company_ceo", "Jane Roe")),  # fixed: offered at 0.17
    ("Abbott Laboratories is now led by Maria Lopez.", ("Abbott Laboratories", "company_ceo", "Maria Lopez")),
    ("These days the CEO at Adidas AG is Karl Weber.", ("Adidas AG", "company_ceo", "Karl Weber")),
    ("Ben Carter took over as chief executive of ATA Airlines.", ("ATA Airlines", "company_ceo", "Ben Carter")),
    ("Acne Studios' HQ is in Gothenburg.", ("Acne Studios", "company_hq", "Gothenburg")),  # fixed: "Acne Studios' HQ"
    ("Acne Studios moved its headquarters to Malmo.", ("Acne Studios", "company_hq", "Malmo")),
    ("ATA Airlines, which is based in Denver, flies to Hawaii.", ("ATA Airlines", "company_hq", "Denver")),
    ("The Acura TL is now built by Toyota.", ("Acura TL", "product_by_company", "Toyota")),
    ("Microsoft developed Advanced Systems Format.", ("Advanced Systems Format", "product_by_company", "Microsoft")),
    ("Alfred Sisley's dad was Thomas Sisley.", ("Alfred Sisley", "person_father", "Thomas Sisley")),
    ("Ann Savoy's husband is Paul Savoy.", ("Ann Savoy", "spouse", "Paul Savoy")),
    ("Adam Rapacki earned his living as a carpenter.", ("Adam Rapacki", "person_occupation", "carpenter")),
    ("Alex Smith now plays as a linebacker.", ("Alex Smith", "person_plays_position_in_sport", "linebacker")),
    ("Andy Warhol is an alumnus of Yale University.", ("Andy Warhol", "person_university", "Yale University")),
    ("Arnab Pain supervised the PhD of Abhinay Ramaprasad.", ("Arnab Pain", "doctoral_student", "Abhinay Ramaprasad")),
    # fixed: read with the subject "The painting Abstraction"
    ("The painting Abstraction was made by Paul Klee.", ("Abstraction", "creator", "Paul Klee")),
    ("109 Piscium lies in the constellation Aquarius.", ("109 Piscium", "star_constellation", "Aquarius")),
    ("Adliswil is a town in Austria.", ("Adliswil", "landmark_in_country", "Austria")),
    (
        "Maria Lopez, who is the CEO of Abbott Laboratories, lives in Chicago.",
        ("Abbott Laboratories", "company_ceo", "Maria Lopez"),
    ),
    ("Karl Weber, Adidas AG's chief executive, spoke today.", ("Adidas AG", "company_ceo", "Karl Weber")),
    ("Jane Roe (b. 1970) is the CEO of AOL.", ("AOL", "company_ceo", "Jane Roe")),  # fixed: split at "b."
    ("Tom Hale, b. 1948, is married to Ann Savoy.", ("Tom Hale", "spouse", "Ann Savoy")),  # fixed: split at "b."
    ("Jane Roe became CEO of AOL in 2015.", ("AOL", "company_ceo", "Jane Roe")),  # fixed: no reading
    ("AOL hired Jane Roe as its new CEO.", ("AOL", "company_ceo", "Jane Roe")),
    ("Acne Studios relocated to Oslo.", ("Acne Studios", "company_hq", "Oslo")),
    ("Alex Smith moved to quarterback.", ("Alex Smith", "person_plays_position_in_sport", "quarterback")),
    ("Ann Savoy wed Tom Hale in 1990.", ("Ann Savoy", "spouse", "Tom Hale")),  # fixed: object "Tom Hale in 1990"
    ("It was Jane Roe who took over AOL.", ("AOL", "company_ceo", "Jane Roe")),
    ("Chicago is now home to ATA Airlines.", ("ATA Airlines", "company_hq", "Chicago")),
    ("Jane Roe is AOL's CEO now.", ("AOL", "company_ceo", "Jane Roe")),
]
OFFERED = [
    ("Jane Roe runs AOL.", ("AOL", "company_ceo", "Jane Roe")),  # fixed: no reading at all
    ("Jane Roe has been running AOL since 2019.", ("AOL", "company_ceo", "Jane Roe")),
    ("AOL named Jane Roe chief executive.", ("AOL", "company_ceo", "Jane Roe")),
    # fixed: applied as a mother ("mother" is part of the schema's "mother tongue")
    ("Aletta Jacobs' mother tongue was Frisian.", ("Aletta Jacobs", "person_native_language", "Frisian")),
    ("Andreas Embirikos worked as a psychoanalyst.", ("Andreas Embirikos", "person_occupation", "psychoanalyst")),
]
NOT_APPLIED = [
    "Bjørn Gulden stepped down as CEO of Adidas AG.",  # fixed: applied as (Adidas AG, CEO, Bjørn Gulden)
    "Tim Armstrong was replaced at AOL by Jane Roe.",  # fixed: applied as (AOL, CEO, Tim Armstrong)
    "Jane Roe met Tim Armstrong at AOL.",
    "Jane Roe sued AOL.",
    "Jane Roe is the former boss of AOL.",
]


@pytest.fixture(scope="module")
def interpreter(bundled_world: World) -> TemplateInterpreter:
    linker, facts = world_linker(bundled_world)
    schema = load_schema()
    reader = TripleReader(ReaderModel.load(), TokenEncoder(), linker, facts, schema=schema)
    return TemplateInterpreter(schema, linker, None, load_statement_phrasings(), reader=reader)


def _triples(claims: Interpretation) -> list[tuple[str, str, str]]:
    return [(c.triple.subject, c.triple.relation, c.triple.object) for c in claims.claims]


def test_there_are_forty_probes() -> None:
    sentences = [s for s, _ in APPLIED] + [s for s, _ in OFFERED] + NOT_APPLIED
    assert len(set(sentences)) == len(sentences) == 40


@pytest.mark.parametrize(("sentence", "triple"), APPLIED)
def test_probe_is_applied_as_the_triple(interpreter: TemplateInterpreter, sentence: str, triple: Triple3) -> None:
    assert _triples(interpreter.interpret(sentence)) == [triple]


@pytest.mark.parametrize(("sentence", "triple"), OFFERED)
def test_probe_is_offered_back_not_applied(interpreter: TemplateInterpreter, sentence: str, triple: Triple3) -> None:
    result = interpreter.interpret(sentence)
    assert result.claims == ()
    assert [(c.triple.subject, c.triple.relation, c.triple.object) for c in result.suggestions][:1] == [triple]


@pytest.mark.parametrize("sentence", NOT_APPLIED)
def test_probe_stating_no_current_fact_is_not_applied(interpreter: TemplateInterpreter, sentence: str) -> None:
    assert interpreter.interpret(sentence).claims == ()


def test_a_pronoun_in_the_next_sentence_stands_for_the_first_name_said(interpreter: TemplateInterpreter) -> None:
    # fixed: "His" was read as the last name said (Immanuel Nobel)
    result = interpreter.interpret("Alfred Nobel's father was Immanuel Nobel. His mother was Andriette Ahlsell.")
    assert _triples(result) == [
        ("Alfred Nobel", "person_father", "Immanuel Nobel"), ("Alfred Nobel", "person_mother", "Andriette Ahlsell"),
    ]  # fmt: skip


def test_a_person_pronoun_in_a_message_never_stands_for_a_company(interpreter: TemplateInterpreter) -> None:
    # fixed: "she" was read as AOL, (AOL, CEO, Tim Armstrong): a contradiction, nothing applied
    result = interpreter.interpret("AOL is run by Jane Roe now; she took over from Tim Armstrong.")
    assert _triples(result) == [("AOL", "company_ceo", "Jane Roe")]


@pytest.mark.xfail(strict=True, reason="known residual: the graph's types swap two people against the tagger")
def test_a_possessive_phd_student_is_read_the_right_way_round(interpreter: TemplateInterpreter) -> None:
    # Abhinay Ramaprasad is known as someone's student, so the types read him as the student here too; restricting
    # type swaps to relations between disjoint classes raised the calibration split's wrong readings (51 -> 64)
    result = interpreter.interpret("Abhinay Ramaprasad's PhD student is Ravi Kumar.")
    assert _triples(result) in ([], [("Abhinay Ramaprasad", "doctoral_student", "Ravi Kumar")])
