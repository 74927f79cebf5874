"""Residual misreadings of stop 48 (issue 17), each failing before its fix: a name the tagger gives no role
("Jane Roe runs AOL."), two names given one role whose roles the graph's types settle ("Jane Roe heads AOL."),
and the sentence-level rules the hand-written probes (test_probe_phrasings.py) showed wanting."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent.tell import ReaderModel, TemplateInterpreter, TokenEncoder, TripleReader, load_statement_phrasings
from agent.tell._role_nouns import role_nouns, shadowed_by
from agent.tell._sentences import clean_sentence, split_sentences
from agent.tell._spans import capital_runs
from kg import Entity, EntityLinker, load_schema
from memory import Triple

AOL_CEO = ("AOL", "company_ceo", "Jane Roe")


@dataclass(frozen=True)
class _Fact:
    triple: Triple


class _Facts:
    """AOL known as a company (the subject of a CEO fact), as the agent's graph knows it."""

    def facts(self, subject: str | None = None, relation: str | None = None, obj: str | None = None) -> list[_Fact]:
        known = [Triple("AOL", "company_ceo", "Tim Armstrong")]
        return [
            _Fact(t) for t in known
            if (subject is None or t.subject == subject) and (obj is None or t.object == obj)
            and (relation is None or t.relation == relation)
        ]  # fmt: skip


@pytest.fixture(scope="module")
def encoder() -> TokenEncoder:
    return TokenEncoder()


def _reader(encoder: TokenEncoder, *, typed: bool) -> TripleReader:
    linker = EntityLinker([Entity("urn:t:0", "AOL"), Entity("urn:t:1", "Tim Armstrong")])
    if not typed:
        return TripleReader(ReaderModel.load(), encoder, linker)
    return TripleReader(ReaderModel.load(), encoder, linker, _Facts(), schema=load_schema())


def _triple(t: Triple) -> tuple[str, str, str]:
    return t.subject, t.relation, t.object


@pytest.mark.parametrize("typed", [False, True])
def test_a_name_the_tagger_gives_no_role_is_read_and_offered(encoder: TokenEncoder, typed: bool) -> None:
    # the tagger marks AOL as the subject and "Jane Roe" as nothing: before, no reading at all
    reading = _reader(encoder, typed=typed).read("Jane Roe runs AOL")
    assert reading is not None and _triple(reading.triple) == AOL_CEO
    assert not reading.accepted  # the tagger never saw a name there: offered back, not applied


def test_two_names_given_one_role_are_applied_when_the_graph_settles_the_roles(encoder: TokenEncoder) -> None:
    untyped = _reader(encoder, typed=False).read("Jane Roe heads AOL")
    assert untyped is not None and _triple(untyped.triple) == AOL_CEO and not untyped.accepted  # 0.17 before
    typed = _reader(encoder, typed=True).read("Jane Roe heads AOL")
    assert typed is not None and _triple(typed.triple) == AOL_CEO
    assert typed.accepted and typed.confidence >= 0.9


@pytest.mark.parametrize("sentence", ["Jane Roe sued AOL", "Jane Roe met Tim Armstrong at AOL"])
def test_a_sentence_stating_no_relation_is_still_not_applied(encoder: TokenEncoder, sentence: str) -> None:
    reading = _reader(encoder, typed=True).read(sentence)
    assert reading is None or not reading.accepted


def test_the_interpreter_offers_the_unread_name_back(encoder: TokenEncoder) -> None:
    linker = EntityLinker([Entity("urn:t:0", "AOL")])
    reader = TripleReader(ReaderModel.load(), encoder, linker, _Facts(), schema=load_schema())
    interpreter = TemplateInterpreter(load_schema(), linker, None, load_statement_phrasings(), reader=reader)
    result = interpreter.interpret("Jane Roe runs AOL.")
    assert result.claims == () and [_triple(c.triple) for c in result.suggestions][:1] == [AOL_CEO]
    assert _triple(interpreter.interpret("Jane Roe heads AOL.").claims[0].triple) == AOL_CEO


def test_capital_runs_leave_out_openers_numbers_and_blocked_words() -> None:
    text = "Since 2019 Jane Roe has run AOL."
    assert [text[a:b] for a, b in capital_runs(text)] == ["Jane Roe", "AOL"]
    text = "Jane Roe became CEO of AOL in 2015"
    assert [text[a:b] for a, b in capital_runs(text, [(0, 8), (16, 19)])] == ["AOL"]  # "CEO" blocked
    assert [t for t in capital_runs("The Hague is in Holland.")] == [(0, 9), (16, 23)]


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Jane Roe (b. 1970) is the CEO of AOL.", ["Jane Roe is the CEO of AOL"]),
        ("Tom Hale, b. 1948, is married to Ann Savoy.", ["Tom Hale is married to Ann Savoy"]),
        ("Ann Lee (1901–1980) was a poet.", ["Ann Lee was a poet"]),
        ("Ann Savoy wed Tom Hale in 1990.", ["Ann Savoy wed Tom Hale"]),
        ("AOL is based in Route 1990.", ["AOL is based in Route 1990"]),  # a number in a name stays
        ("I like it (a lot). Jane is here.", ["I like it (a lot)", "Jane is here"]),
    ],
)
def test_life_dates_and_years_are_no_part_of_a_name(text: str, cleaned: list[str]) -> None:
    assert [clean_sentence(s) for s in split_sentences(text)] == cleaned


def test_a_role_noun_inside_another_relations_longer_noun_is_offered_as_that_relation() -> None:
    nouns = role_nouns(load_schema(), load_statement_phrasings())
    assert "mother tongue" in nouns["person_native_language"] and "name" not in nouns["person_mother"]
    assert shadowed_by("Aletta Jacobs' mother tongue was Frisian", "person_mother", nouns) == "person_native_language"
    assert shadowed_by("The head office of AOL is in Paris", "company_ceo", nouns) == "company_hq"
    assert shadowed_by("The head of AOL is Jane Roe", "company_ceo", nouns) is None
    assert shadowed_by("Jane Roe fathered Tom Roe", "person_father", nouns) is None  # no noun: read from a verb
