"""Names that contain other names: the reader's name checks (agent/tell/_name_checks.py) on the two spans
agent-bench applied wrongly at stop 39, and the sentences that must still read as before."""

from __future__ import annotations

import pytest

from agent.tell import ReaderModel, TemplateInterpreter, TokenEncoder, TripleReader, load_statement_phrasings
from agent.tell._name_checks import (
    check_name,
    comma_tail,
    foreign_head,
    governing_phrase,
    overlaps_known,
    preposition_tail,
    quantity_lead,
    title_start,
)
from eval.agent_bench import world_linker
from eval.world import World
from kg import Entity, EntityLinker, load_schema

WIFE = "wife of Zhou Rui has married Cassiopeia."
SHOT = "The shot at the corpse of the king came from the hand of Antoni D'Ocon."
SPSS = "Statistical Package for the Social Sciences"
MASTER = "One of Master of the Spes Nostra's famous works is Portrait of a woman."


def _span(text: str, name: str) -> tuple[int, int]:
    start = text.index(name)
    return start, start + len(name)


# -- the checks on their own ------------------------------------------------------------------------------


def test_a_name_governed_by_a_clause_opening_noun_is_the_subject_only_before_a_copula() -> None:
    assert governing_phrase(WIFE, *_span(WIFE, "Zhou Rui")) == _span(WIFE, "wife of Zhou Rui")
    text = "The wife of Zhou Rui has married Cassiopeia."
    assert governing_phrase(text, *_span(text, "Zhou Rui")) == _span(text, "wife of Zhou Rui")
    for text in (
        "The mother of Jane Roe is Ann Smith.",
        "The dad of Jane Roe is named Bob Roe.",
        "The CEO of AOL has been Jane Roe.",
        "One of Jane Roe's famous works is Body of Air.",  # a quantity, not a thing, heads the phrase
        "In the country of Peru stands Machu Picchu.",  # an adverbial, not a subject
    ):
        name = "Peru" if "Peru" in text else "AOL" if "AOL" in text else "Jane Roe"
        assert governing_phrase(text, *_span(text, name)) is None, text


def test_a_span_cut_before_a_preposition_takes_the_title_head_before_it_only_at_the_sentence_start() -> None:
    assert title_start(SHOT, _span(SHOT, "at the corpse")[0]) == 0
    assert title_start("Jane Roe said at the corpse of the king it was so.", 14) is None  # a clause before it
    assert title_start("The at the corpse of the king came.", 4) is None  # an article alone is no head
    text = "The musical gathering was made by Jan Steen."
    assert title_start(text, _span(text, "gathering")[0], cut=False) == 0
    assert title_start("The CEO is acme.", _span("The CEO is acme.", "acme")[0], cut=False) is None


def test_a_name_read_from_its_middle_reaches_back_over_a_foreign_head_but_not_over_a_clause() -> None:
    text = "Mei di guo zhu yi cong Yue Nan was created by Raphael."
    assert foreign_head(text, _span(text, "zhu")[0]) == 0
    for text in ("Jane Roe runs acme now.", "Acme is led by bob.", "Acme hired bob.", "Jane moved acme."):
        assert foreign_head(text, text.rindex(" ") + 1) is None, text


def test_quantity_leads_overlapping_known_names_and_comma_tails() -> None:
    assert quantity_lead(MASTER, *_span(MASTER, "One of Master of the Spes Nostra")) == 7
    assert quantity_lead("One Direction is a band.", 0, 13) is None
    assert overlaps_known(0, 10, [(5, 20)]) == (5, 20)
    assert overlaps_known(0, 20, [(5, 10)]) is None  # a known name inside a longer one ("Beles River")
    text = "Anna's better half is Elizabeth Cheney, Lady Say."
    assert text[22 : comma_tail(text, _span(text, "Elizabeth Cheney")[1])] == "Elizabeth Cheney, Lady Say"
    text = "Jane Roe is the child of Scott Swift, the father."
    assert comma_tail(text, _span(text, "Scott Swift")[1]) is None


def test_a_name_going_on_after_a_preposition_is_offered_with_its_tail() -> None:
    text = "Toyota is the company that makes Statistical Package for the Social Sciences."
    end = _span(text, "Statistical Package")[1]
    assert text[_span(text, "Statistical")[0] : preposition_tail(text, end)] == SPSS
    for text in ("Jane Roe took over as CEO of AOL in March.", "AOL moved its head office to Paris in France."):
        assert preposition_tail(text, text.rindex(" in ")) is None, text


def test_check_name_leaves_ordinary_names_alone() -> None:
    text = "Franz Joseph I of Austria has married Jane Roe."
    span = _span(text, "Franz Joseph I of Austria")
    assert check_name(text, *span, first=True, linked=False, known=[_span(text, "Austria")]) == (*span, False)
    text = "AOL's new CEO is Jane Roe."
    span = _span(text, "Jane Roe")
    assert check_name(text, *span, first=False, linked=False, known=[]) == (*span, False)


# -- the shipped reader ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder() -> TokenEncoder:
    return TokenEncoder()


def _reader(encoder: TokenEncoder, *names: str) -> TripleReader:
    return TripleReader(
        ReaderModel.load(), encoder, EntityLinker([Entity(f"urn:t:{i}", n) for i, n in enumerate(names)])
    )


@pytest.mark.parametrize("known", [(), ("Zhou Rui", "Cassiopeia")])
def test_a_name_inside_a_longer_unknown_name_is_not_applied_but_offered_whole(
    encoder: TokenEncoder, known: tuple[str, ...]
) -> None:
    # agent-bench at stop 39 applied (Zhou Rui, spouse, Cassiopeia): its graph holds the world's UNKNOWN facts
    # only, so "wife of Zhou Rui" (a known-split entity) was no name the linker knew
    reading = _reader(encoder, *known).read(WIFE)
    assert reading is not None and not reading.accepted
    assert (reading.triple.subject, reading.triple.relation, reading.triple.object) == (
        "wife of Zhou Rui", "spouse", "Cassiopeia",
    )  # fmt: skip


def test_the_longest_known_name_wins_over_a_name_inside_it(encoder: TokenEncoder) -> None:
    reading = _reader(encoder, "wife of Zhou Rui", "Zhou Rui", "Cassiopeia").read(WIFE)
    assert reading is not None and reading.accepted
    assert (reading.triple.subject, reading.triple.object) == ("wife of Zhou Rui", "Cassiopeia")


@pytest.mark.parametrize("known", [(), ("The shot at the corpse of the king", "Antoni D'Ocon")])
def test_a_title_starting_with_the_and_lower_case_words_is_read_whole(
    encoder: TokenEncoder, known: tuple[str, ...]
) -> None:
    reading = _reader(encoder, *known).read(SHOT)
    assert reading is not None and reading.accepted
    assert (reading.triple.subject, reading.triple.relation, reading.triple.object) == (
        "The shot at the corpse of the king", "creator", "Antoni D'Ocon",
    )  # fmt: skip


def test_a_quantity_before_a_known_name_is_not_part_of_it(encoder: TokenEncoder, bundled_world: World) -> None:
    # the reader bench's setting with every world name known (``reader bench --link all``): the tagger read
    # "One of Master of the Spes Nostra" (no known name covers it) and the reader applied it
    linker, facts = world_linker(bundled_world, everything=True)
    reader = TripleReader(ReaderModel.load(), encoder, linker, facts)
    interpreter = TemplateInterpreter(load_schema(), linker, None, load_statement_phrasings(), reader=reader)
    claims = interpreter.interpret(MASTER).claims
    assert [(c.triple.subject, c.triple.relation, c.triple.object) for c in claims] == [
        ("Master of the Spes Nostra", "notable_work", "Portrait of a woman")
    ]


@pytest.mark.parametrize(
    ("sentence", "triple"),
    [
        ("The mum of Jane Roe is named Ann Smith.", ("Jane Roe", "person_mother", "Ann Smith")),
        ("The CEO of AOL is Jane Roe.", ("AOL", "company_ceo", "Jane Roe")),
        ("The musical gathering was made by Jan Steen.", ("The musical gathering", "creator", "Jan Steen")),
        ("Franz Joseph I of Austria has married Jane Roe.", ("Franz Joseph I of Austria", "spouse", "Jane Roe")),
    ],
)
def test_names_the_checks_must_not_doubt_are_still_applied(
    encoder: TokenEncoder, sentence: str, triple: tuple[str, str, str]
) -> None:
    reading = _reader(encoder, "Austria").read(sentence)
    assert reading is not None and reading.accepted
    assert (reading.triple.subject, reading.triple.relation, reading.triple.object) == triple


def test_the_interpreter_offers_the_whole_name_back_instead_of_applying_the_inner_one(encoder: TokenEncoder) -> None:
    linker = EntityLinker([Entity("urn:t:0", "Zhou Rui"), Entity("urn:t:1", "Cassiopeia")])
    reader = TripleReader(ReaderModel.load(), encoder, linker)
    interpreter = TemplateInterpreter(load_schema(), linker, None, load_statement_phrasings(), reader=reader)
    reading = interpreter.interpret(WIFE)
    assert reading.claims == ()
    assert reading.suggestions and reading.suggestions[0].triple.subject == "wife of Zhou Rui"


def test_a_name_read_short_before_a_preposition_is_not_applied(encoder: TokenEncoder, bundled_world: World) -> None:
    # the reader bench's setting (the names of the world's UNKNOWN facts known): read as "Statistical Package"
    linker, facts = world_linker(bundled_world)
    reader = TripleReader(ReaderModel.load(), encoder, linker, facts)
    interpreter = TemplateInterpreter(load_schema(), linker, None, load_statement_phrasings(), reader=reader)
    reading = interpreter.interpret(f"Toyota is the company that makes {SPSS}.")
    assert reading.claims == ()
    assert reading.suggestions and reading.suggestions[0].triple.subject == SPSS
