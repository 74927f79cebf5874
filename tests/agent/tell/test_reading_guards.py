"""Readings the interpreter must not apply (found by hand in chat at stop 45; each was applied before):

* "Paris is the capital of France." was applied as (France, headquarters city, Paris): the learned reader was
  never trained on ``capital`` (a schema relation of the Chinese slice) and read its nearest relation;
* "Jane Roe and John Doe are the CEOs of AOL." was applied as (AOL, CEO, John Doe), dropping Jane Roe;
* "AOL is run by 42." and "AOL is run by 🦄." were applied with 42 / 🦄 as AOL's CEO.
"""

from __future__ import annotations

import pytest

from agent.tell import ReaderModel, TemplateInterpreter, TokenEncoder, TripleReader, load_statement_phrasings
from agent.tell._name_checks import check_name, coordinated, no_letters
from kg import Entity, EntityLinker, load_schema


@pytest.fixture(scope="module")
def interpreter() -> TemplateInterpreter:
    linker = EntityLinker([Entity("urn:t:0", "AOL"), Entity("urn:t:1", "Jane Roe")])
    reader = TripleReader(ReaderModel.load(), TokenEncoder(), linker)
    return TemplateInterpreter(load_schema(), linker, None, load_statement_phrasings(), reader=reader)


def _triples(claims: object) -> list[tuple[str, str, str]]:
    return [(c.triple.subject, c.triple.relation, c.triple.object) for c in claims]  # type: ignore[attr-defined]


def test_a_relation_the_reader_cannot_read_is_offered_back_not_read_as_another(
    interpreter: TemplateInterpreter,
) -> None:
    result = interpreter.interpret("Paris is the capital of France.")
    assert result.claims == ()
    assert ("France", "capital", "Paris") in _triples(result.suggestions)
    # the schema's own phrasing of the relation is read as before
    assert _triples(interpreter.interpret("The capital of France is Paris.").claims) == [("France", "capital", "Paris")]


def test_a_phrasing_naming_both_the_read_relation_and_an_unread_one_keeps_the_reading(
    interpreter: TemplateInterpreter,
) -> None:
    # the free-phrasing benchmark's father phrasing names "child" (an unread relation) and "father"
    result = interpreter.interpret("Jane Roe is a child of Bob Roe, the father.")
    assert all(t[1] != "child" for t in _triples(result.suggestions) + _triples(result.claims))


def test_one_name_of_a_list_is_not_applied(interpreter: TemplateInterpreter) -> None:
    result = interpreter.interpret("Jane Roe and John Doe are the CEOs of AOL.")
    assert result.claims == ()


@pytest.mark.parametrize("sentence", ["AOL is run by 42.", "AOL is run by 🦄.", "The CEO of AOL is 42."])
def test_a_name_without_letters_is_neither_applied_nor_offered(interpreter: TemplateInterpreter, sentence: str) -> None:
    result = interpreter.interpret(sentence)
    assert result.claims == () and result.suggestions == ()


def test_names_with_letters_or_known_lists_still_read(interpreter: TemplateInterpreter) -> None:
    assert _triples(interpreter.interpret("AOL is run by Jane Roe.").claims) == [("AOL", "company_ceo", "Jane Roe")]
    assert not no_letters("3M") and not no_letters("巴黎") and no_letters("...")
    # the two names of the reading joined by "and", and a title holding "and", are read (the reader bench)
    text = "Maria Palaska and Jacques Cousteau got married."
    assert not coordinated(text, 0, 13, (18, 34)) and not coordinated(text, 18, 34, (0, 13))
    text = "Emma Kohlmann is known for Bacchus and Ariadne."
    assert not coordinated(text, 27, 46, (0, 13))
    assert not check_name(text, 27, 46, first=False, linked=False, known=[])[2]
