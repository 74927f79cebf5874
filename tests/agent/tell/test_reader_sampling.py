"""How the reader's training sentences are drawn: construction first, deterministic, with direction and
relation contrasts between two people (the fix for "Jorge Messi fathered Lionel Messi." read backwards)."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import pairwise

import pytest

from agent.cli._reader import training_names
from agent.tell import _reader_calibrate as reader_calibrate
from agent.tell._reader_calibrate import generate_splits
from agent.tell._reader_data import (
    NO_RELATION_CONTRAST,
    NONE,
    PERSON_PAIR_RELATIONS,
    Example,
    make_examples,
    split_by_construction,
    training_constructions,
    training_phrasings,
)
from agent.tell._reader_grammar import GRAMMAR, constructions, grammar_phrasings
from eval.world import World

NAMES = {
    "person_father": [("Lionel Messi", "Jorge Messi"), ("Ada Lovelace", "Lord Byron")],
    "person_mother": [("Lionel Messi", "Celia Cuccittini"), ("Ada Lovelace", "Anne Milbanke")],
    "company_ceo": [("AOL", "Tim Armstrong"), ("Nokia", "Rajeev Suri")],
}
ACTIVE = {"person_father": r"\b(fathered|sired|begat)\b", "person_mother": r"\b(gave birth to|bore|mothered)\b"}


def _names(ex: Example) -> tuple[str, str]:
    return ex.text[slice(*ex.subject)], ex.text[slice(*ex.object)]


def _active_object_first(ex: Example) -> bool:
    """The parent told with an active verb, parent first: "{o} fathered {s}" (not "{s} was fathered by {o}")."""
    pattern = ACTIVE.get(ex.relation)
    return bool(pattern and re.search(pattern, ex.text)) and ex.object[0] < ex.subject[0] and " by " not in ex.text


def test_constructions_cover_the_grammar_phrasings_in_order() -> None:
    for relation in GRAMMAR:
        assert list(constructions(relation)) == grammar_phrasings(relation)
    father = constructions("person_father")
    assert father["{o} fathered {s}"] == father["{o} begat {s}"] == "clause:0"
    assert father["{s}'s father is {o}"] == father["{s}'s dad is {o}"] == "frame:poss_is"


def test_active_parent_clauses_weigh_as_a_construction_not_by_their_few_phrasings() -> None:
    phrasings = {r: training_phrasings()[r] for r in NAMES}
    balanced = make_examples(phrasings, NAMES, per_relation=600, seed=3, constructions=training_constructions())
    uniform = make_examples(phrasings, NAMES, per_relation=600, seed=3)
    for relation in ("person_father", "person_mother"):
        share = [
            sum(_active_object_first(e) for e in exs if e.relation == relation) / 600 for exs in (balanced, uniform)
        ]
        # the active clauses are 2 of ~30 constructions, but a few of ~1,200 phrasings
        assert share[0] >= 0.03 and share[0] >= 3 * share[1], (relation, share)


def test_the_training_splits_are_balanced_and_give_the_same_sentences_for_the_same_seed() -> None:
    first = generate_splits(NAMES, list(NAMES), seed=5, per_relation=400)
    assert first == generate_splits(NAMES, list(NAMES), seed=5, per_relation=400)
    assert first.fit != generate_splits(NAMES, list(NAMES), seed=6, per_relation=400).fit
    father = [e for e in first.fit if e.relation == "person_father"]
    assert sum(map(_active_object_first, father)) / len(father) >= 0.02  # 0.4% of phrasings; ~0.5% drawn before


def test_contrasts_swap_the_names_or_tell_another_relation_of_the_same_two_people() -> None:
    phrasings = {r: training_phrasings()[r] for r in NAMES}
    exs = make_examples(
        phrasings, NAMES, per_relation=400, seed=2, constructions=training_constructions(),
        contrast=PERSON_PAIR_RELATIONS, contrast_rate=0.25,
    )  # fmt: skip
    assert exs == make_examples(
        phrasings, NAMES, per_relation=400, seed=2, constructions=training_constructions(),
        contrast=PERSON_PAIR_RELATIONS, contrast_rate=0.25,
    )  # fmt: skip
    swapped = related = 0
    for a, b in pairwise(exs):
        if a.relation not in PERSON_PAIR_RELATIONS or b.relation == NONE:
            continue
        if b.relation == a.relation and _names(b) == _names(a)[::-1]:
            swapped += 1
        elif b.relation != a.relation and b.relation in PERSON_PAIR_RELATIONS and _names(b) == _names(a):
            related += 1
    people = sum(e.relation in PERSON_PAIR_RELATIONS for e in exs)
    assert swapped >= 0.1 * people and related >= 0.1 * people, (swapped, related, people)
    # a relation outside the contrast set gets none, and every relation keeps its count
    ceo = [e for e in exs if e.relation == "company_ceo"]
    assert len(ceo) == 400 and all(_names(e)[0] in {"AOL", "Nokia"} for e in ceo)
    assert Counter(e.relation for e in exs)["person_father"] >= 400 - 150


def test_every_construction_keeps_phrasings_in_the_fit_split() -> None:
    for relation in ("person_father", "person_mother", "company_ceo", "doctoral_advisor"):
        phrasings, cons = training_phrasings()[relation], training_constructions()[relation]
        for seed in range(3):
            fit, cal = split_by_construction(phrasings, cons, 0.25, random.Random(seed))
            assert (fit, cal) == split_by_construction(phrasings, cons, 0.25, random.Random(seed))
            assert sorted(fit + cal) == sorted(phrasings) and not set(fit) & set(cal)
            assert {cons[p] for p in fit} == set(cons.values()), (relation, seed)
            small = [c for c in set(cons.values()) if sum(v == c for v in cons.values()) < 4]
            assert not {cons[p] for p in cal} & set(small), (relation, seed)  # a small construction stays whole
            assert 0.2 <= len(cal) / len(phrasings) <= 0.3


def test_the_world_split_trains_on_every_construction(bundled_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # the split the CLI's training makes (seed 0, the world's names): before it was stratified by construction,
    # "{o} fathered {s}" fell in calibration only, so the reader never trained on an active "fathered" and read
    # "Jorge Messi fathered Lionel Messi." backwards (spouse, creator and occupation lost a clause each too)
    drawn: list[Mapping[str, Sequence[str]]] = []

    def spy(phrasings: Mapping[str, Sequence[str]], *args: object, **kwargs: object) -> list[Example]:
        drawn.append(phrasings)
        return []

    monkeypatch.setattr(reader_calibrate, "make_examples", spy)
    generate_splits(training_names(bundled_world), [r.id for r in bundled_world.relations], seed=0, per_relation=8)
    fit, cons = drawn[0], training_constructions()
    assert {"{o} fathered {s}", "{o} sired {s}", "{o} begat {s}"} <= set(fit["person_father"])
    missing = {r: sorted(set(cons[r].values()) - {cons[r][p] for p in ps}) for r, ps in fit.items()}
    assert {r: m for r, m in missing.items() if m} == {}


def test_advisor_and_student_get_direction_contrasts_but_no_relation_contrast() -> None:
    names = {
        "doctoral_advisor": [("Ann Lee", "Bo Chen"), ("Cy Diaz", "Di Eze"), ("Ed Fox", "Flo Gray")],
        "doctoral_student": [("Bo Chen", "Ann Lee"), ("Di Eze", "Cy Diaz"), ("Flo Gray", "Ed Fox")],
    }
    phrasings = {r: training_phrasings()[r] for r in names}
    exs = make_examples(
        phrasings, names, per_relation=300, seed=4, constructions=training_constructions(),
        contrast=PERSON_PAIR_RELATIONS, contrast_rate=0.25, no_relation_contrast=NO_RELATION_CONTRAST,
    )  # fmt: skip
    # the relations are drawn in order: each one's 300 sentences carry its own label only
    assert [e.relation for e in exs] == ["doctoral_advisor"] * 300 + ["doctoral_student"] * 300
    swapped = sum(b.relation == a.relation and _names(b) == _names(a)[::-1] for a, b in pairwise(exs))
    assert swapped >= 0.1 * len(exs)
    fit = generate_splits(names, list(names), seed=0, per_relation=300).fit
    assert [e.relation for e in fit if e.relation != NONE] == ["doctoral_advisor"] * 300 + ["doctoral_student"] * 300


def test_born_to_with_no_parent_word_is_taught_as_either_parent() -> None:
    # "X was born to Y" names a parent, not which: labelled father and mother about equally often, so the
    # reader cannot apply either from it alone; "born to a father named Y" / "born to mother Y" stay one-sided
    for relation in ("person_father", "person_mother"):
        assert "{s} was born to {o}" in training_phrasings()[relation]
    bare = re.compile(r"\bborn to (?!(?:father|dad|a father named|mother|mom|mum|a mother named|a woman named)\b)")
    fit = generate_splits(NAMES, list(NAMES), seed=0, per_relation=1200).fit
    labels = Counter(e.relation for e in fit if bare.search(e.text))
    assert labels["person_father"] >= 20 and labels["person_mother"] >= 20, labels
    assert 0.6 <= labels["person_father"] / labels["person_mother"] <= 1.6, labels
    assert set(labels) == {"person_father", "person_mother"}, labels
    # each such sentence is there with both labels: the names (a father's, a mother's) cannot decide it (the
    # run of stop 40 labelled each by the relation whose names filled it, and read "born to Jane Roe" as mother)
    people = "|".join(n for r in ("person_father", "person_mother") for pair in NAMES[r] for n in pair)
    born_to_a_name = re.compile(rf"\bborn to (?:{people})\b")
    by_text: dict[str, set[str]] = {}
    for e in fit:
        if born_to_a_name.search(e.text):
            by_text.setdefault(e.text, set()).add(e.relation)
    assert all(rels == {"person_father", "person_mother"} for rels in by_text.values()), by_text
