"""The template interpreter: statements of many relations, questions, chit-chat, free text, contradictions."""

from __future__ import annotations

import pytest

from agent.tell import Interpretation, TemplateInterpreter, load_statement_phrasings
from kg import Entity, EntityLinker, entity_iri, load_schema
from memory import Triple
from tools.errors import ConfigError, ContradictoryStatementError, InvalidInputError

KNOWN = {"Acme Corp": ("Acme",), "Jane Roe": (), "Yum! Brands": (), "HP Inc.": (), "Paris": ()}


@pytest.fixture(scope="module")
def interpreter() -> TemplateInterpreter:
    linker = EntityLinker([Entity(str(entity_iri(name)), name, aliases) for name, aliases in KNOWN.items()])
    return TemplateInterpreter(load_schema(), linker, phrasings=load_statement_phrasings())


def _triples(result: Interpretation) -> list[tuple[str, str, str]]:
    return [(c.triple.subject, c.triple.relation, c.triple.object) for c in result.claims]


@pytest.mark.parametrize(
    ("text", "triple"),
    [
        ("The CEO of Acme is Jane Roe.", ("Acme Corp", "company_ceo", "Jane Roe")),  # alias -> canonical label
        ("Alibaba's CEO is Takahiro Hachigō.", ("Alibaba", "company_ceo", "Takahiro Hachigō")),  # new entity
        ("Actually, the CEO of Acme is now Bob Stone.", ("Acme Corp", "company_ceo", "Bob Stone")),
        ("acme corp is headquartered in paris", ("Acme Corp", "company_hq", "Paris")),  # case folded, linked
        ("Yum! Brands's CEO is Greg Creed.", ("Yum! Brands", "company_ceo", "Greg Creed")),  # "!" is no break
        ("J.M. Meulenhoff is headquartered in Belfast.", ("J.M. Meulenhoff", "company_hq", "Belfast")),
        ("Matson, Inc. is headquartered in Seattle.", ("Matson, Inc.", "company_hq", "Seattle")),
        ("Danielle Darrieux's mother tongue is English.", ("Danielle Darrieux", "person_native_language", "English")),
        ("The star Sirius belongs to the constellation Canis Major.", ("Sirius", "star_constellation", "Canis Major")),
        ("Will Smith is married to Jada Pinkett.", ("Will Smith", "spouse", "Jada Pinkett")),  # "Will" is a name
        ("The Mona Lisa was created by the artist Leonardo.", ("The Mona Lisa", "creator", "Leonardo")),
        ("Beles River is a landmark in India.", ("Beles River", "landmark_in_country", "India")),  # fa:statement
        ("Lisa Su works as an engineer.", ("Lisa Su", "person_occupation", "engineer")),  # article dropped
        ("In genealogical terms, Ann Lee's father is Tom Lee.", ("Ann Lee", "person_father", "Tom Lee")),
        ("The CEO of Acme is Jane Roe, who joined in 2020.", ("Acme Corp", "company_ceo", "Jane Roe")),
    ],
)
def test_statements_become_triples(interpreter: TemplateInterpreter, text: str, triple: tuple[str, str, str]) -> None:
    result = interpreter.interpret(text)
    assert result.kind == "edit"
    assert _triples(result) == [triple]
    claim = result.claims[0]
    assert claim.sentence.startswith(text.split()[0]) and claim.template is not None
    assert claim.new_subject == (triple[0] not in KNOWN)


def test_no_longer_x_but_y_records_the_replaced_object(interpreter: TemplateInterpreter) -> None:
    claim = interpreter.interpret("The CEO of Acme is no longer Bob Stone but Jane Roe.").claims[0]
    assert claim.triple == Triple("Acme Corp", "company_ceo", "Jane Roe") and claim.replaces == "Bob Stone"
    assert interpreter.interpret("Acme is headquartered in Berlin, not Paris.").claims[0].replaces == "Paris"


def test_several_sentences_and_a_pronoun(interpreter: TemplateInterpreter) -> None:
    result = interpreter.interpret("HP Inc.'s CEO is Dion Weisler. It is headquartered in Palo Alto. Who are you?")
    assert _triples(result) == [("HP Inc.", "company_ceo", "Dion Weisler"), ("HP Inc.", "company_hq", "Palo Alto")]
    assert result.questions == ("Who are you?",)


@pytest.mark.parametrize(
    "text",
    [
        "Who is the CEO of Acme?", "Is Jane Roe the CEO of Acme", "Do you know who runs Acme", "How are you?",
        "In which city is Acme based", "By whom is Acme run",
    ],
)  # fmt: skip
def test_questions_are_not_edits(interpreter: TemplateInterpreter, text: str) -> None:
    result = interpreter.interpret(text)
    assert result.kind in ("question", "chitchat") and not result.claims


@pytest.mark.parametrize("text", ["Hi there!", "Thanks a lot.", "ok", "Good morning!", "The sky is blue."])
def test_chitchat_is_not_an_edit(interpreter: TemplateInterpreter, text: str) -> None:
    result = interpreter.interpret(text)
    assert result.kind == "chitchat" and not result.claims and not result.free_text


@pytest.mark.parametrize(
    "text", ["Acme Corp sponsors the local football team.", "Acme is not headquartered in Paris.", "Paris is lovely."]
)
def test_statements_with_no_relation_are_free_text(interpreter: TemplateInterpreter, text: str) -> None:
    result = interpreter.interpret(text)
    assert result.kind == "free_text" and result.free_text == (text,) and not result.claims


def test_contradiction_in_one_message_is_an_error(interpreter: TemplateInterpreter) -> None:
    with pytest.raises(ContradictoryStatementError, match="company_ceo"):
        interpreter.interpret("The CEO of Acme is Jane Roe. Acme's CEO is Bob Stone.")
    # the same fact twice, or two values of a relation with many values, is fine
    assert len(interpreter.interpret("The CEO of Acme is Jane Roe. Acme's CEO is Jane Roe.").claims) == 1
    assert interpreter.interpret("The child of Ann is Bo. The child of Ann is Cy.").kind == "edit"


@pytest.mark.parametrize("text", ["", "   ", None])
def test_empty_input(interpreter: TemplateInterpreter, text: object) -> None:
    with pytest.raises(InvalidInputError):
        interpreter.interpret(text)  # type: ignore[arg-type]


def test_statement_phrasings_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "s.ttl"
    path.write_text(
        "@prefix rel: <https://factagent.dev/rel/> . @prefix fa: <https://factagent.dev/ns#> .\n"
        'rel:company_ceo fa:statement "{} is steered by" .\n'
    )
    assert load_statement_phrasings(path) == {"company_ceo": ("{} is steered by",)}
    path.write_text(
        "@prefix rel: <https://factagent.dev/rel/> . @prefix fa: <https://factagent.dev/ns#> .\n"
        'rel:company_ceo fa:statement "is steered by" .\n'
    )
    with pytest.raises(ConfigError, match="slot"):
        load_statement_phrasings(path)
    with pytest.raises(ConfigError):
        load_statement_phrasings(Path(str(tmp_path)) / "missing.ttl")


def test_a_leading_the_before_a_known_name_is_dropped(interpreter: TemplateInterpreter) -> None:
    (claim,) = interpreter.interpret("The Acme Corp is headquartered in Paris.").claims
    assert claim.triple == Triple("Acme Corp", "company_hq", "Paris") and not claim.new_subject
    (claim,) = interpreter.interpret("Acme Corp is headquartered in The Hague.").claims
    assert claim.triple.object == "The Hague"  # not a known name without its article either: kept whole
