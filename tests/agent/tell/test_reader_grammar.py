"""The reader's training grammar and sentence generator: expansion, typos, cleaning, spans that stay true."""

from __future__ import annotations

import random

from agent.tell._reader_data import NONE, Example, cleaned, make_examples, perturb, render, training_phrasings
from agent.tell._reader_grammar import GRAMMAR, NOUN_FRAMES, expand, grammar_phrasings


def test_expand_gives_every_alternative_and_drops_empty_ones() -> None:
    assert expand("{s} (is|was) run by {o}") == ["{s} is run by {o}", "{s} was run by {o}"]
    assert expand("{s}'s (|new ){n} is {o}") == ["{s}'s {n} is {o}", "{s}'s new {n} is {o}"]


def test_every_relation_gets_hundreds_of_phrasings_with_both_slots_once() -> None:
    phrasings = training_phrasings()
    assert set(phrasings) == set(GRAMMAR)
    for relation, items in phrasings.items():
        assert len(items) >= 200, relation
        assert all(p.count("{s}") == 1 and p.count("{o}") == 1 for p in items)
        assert "(" not in "".join(items)  # no alternation group left unexpanded


def test_a_skipped_combination_is_left_out() -> None:
    lex = GRAMMAR["superhero_archnemesis"]
    assert "poss_is:archenemy" in lex.skip and "poss_is" in lex.frames
    assert "{s}'s archenemy is {o}" not in grammar_phrasings("superhero_archnemesis")
    assert "{s}'s nemesis is {o}" in grammar_phrasings("superhero_archnemesis")
    assert set(lex.frames) <= set(NOUN_FRAMES)


def _names(ex: Example) -> tuple[str, str]:
    return ex.text[slice(*ex.subject)], ex.text[slice(*ex.object)]


def test_typos_and_cleaning_keep_the_name_spans_true() -> None:
    rng = random.Random(0)
    base = render("{o} took over as chief executive of {s}", "AOL", "Jane Roe", "Actually, ", " now")
    typos = [perturb(base, rng) for _ in range(50)]
    assert all(_names(typo) == ("AOL", "Jane Roe") for typo in typos)
    assert sum(typo.text != base.text for typo in typos) >= 40  # swapping "oo" in "took" changes nothing
    clean = cleaned(base)
    assert clean is not None and clean.text == "Jane Roe took over as chief executive of AOL"
    assert _names(clean) == ("AOL", "Jane Roe")


def test_make_examples_is_seeded_and_balanced() -> None:
    names = {"company_ceo": [("AOL", "Tim Armstrong"), ("Nokia", "Rajeev Suri")], "company_hq": [("AOL", "Dulles")]}
    phrasings = {r: training_phrasings()[r] for r in names}
    first = make_examples(phrasings, names, per_relation=30, negatives=["{s} met {o}"], n_negative=5, seed=1)
    assert first == make_examples(phrasings, names, per_relation=30, negatives=["{s} met {o}"], n_negative=5, seed=1)
    assert [ex.relation for ex in first].count("company_hq") == 30 and [ex.relation for ex in first].count(NONE) == 5
    for ex in first:
        if ex.relation != NONE:
            s, o = _names(ex)
            assert s in {"AOL", "Nokia"} and o in {"Tim Armstrong", "Rajeev Suri", "Dulles"}


def test_the_grammar_states_inverse_conjoined_and_lower_case_object_constructions() -> None:
    phrasings = training_phrasings()
    # advisor and student told from the other end: the advisor "to / for" the student, the student's doctorate
    assert "{s} served as the doctoral advisor to {o}" in phrasings["doctoral_student"]
    assert "{o} received a doctorate under {s}" in phrasings["doctoral_student"]
    assert "{s} received a doctorate under {o}" in phrasings["doctoral_advisor"]
    # two names joined by "and": the subject and the object of a symmetric relation, a company and its CEO
    assert "{s} and {o} were married" in phrasings["spouse"]
    assert "{s} and its CEO {o} announced a deal" in phrasings["company_ceo"]
    # lower-case objects after an adjective or a career verb
    assert "{s} is a practising {o}" in phrasings["person_occupation"]
    assert "{s} took a position as a {o}" in phrasings["person_occupation"]
    assert "{s} switched to {o} last season" in phrasings["person_plays_position_in_sport"]
