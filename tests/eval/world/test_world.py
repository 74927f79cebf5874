"""The bundled reference world: sizes, splits, templates, edits, unanswerables, determinism."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from eval.world import World, build_world
from eval.world._build import fill


def test_bundled_world_is_what_the_builder_makes(bundled_world: World) -> None:
    rebuilt = build_world()
    assert rebuilt == bundled_world  # deterministic: same seed, same world (manifest aside)


def test_sizes(bundled_world: World) -> None:
    counts = Counter(f.split for f in bundled_world.facts)
    assert counts["known"] >= 2000
    assert counts["unknown"] >= 1000
    assert len(bundled_world.relations) >= 15
    assert len(bundled_world.edits) >= 500
    assert sum(q.kind == "unanswerable" for q in bundled_world.questions) >= 300


def test_every_relation_has_templates_and_heldout_ones_are_unseen(bundled_world: World) -> None:
    for rel in bundled_world.relations:
        assert len(rel.cloze) >= 2 and len(rel.questions) >= 2 and len(rel.heldout) >= 2, rel.id
        assert all(t.count("{}") == 1 for t in rel.cloze + rel.questions + rel.heldout), rel.id
        assert all(t.count("{}") == 1 for t in rel.paraphrases), rel.id
        assert not set(rel.heldout) & set(rel.cloze + rel.questions + rel.paraphrases), rel.id


def test_wikidata_relations_use_pitfalls_paraphrases(bundled_world: World) -> None:
    spouse = bundled_world.relation("spouse")
    assert "The person married to {} is" in spouse.cloze + spouse.heldout
    assert len(spouse.heldout) >= 5


def test_one_object_per_subject_and_relation(bundled_world: World) -> None:
    keys = Counter((f.subject, f.relation) for f in bundled_world.facts)
    assert max(keys.values()) == 1


def test_inverse_facts_share_a_split(bundled_world: World) -> None:
    split = {(f.relation, f.subject, f.object): f.split for f in bundled_world.facts}
    checked = 0
    for (rel, s, o), sp in split.items():
        if rel == "doctoral_advisor" and ("doctoral_student", o, s) in split:
            assert split[("doctoral_student", o, s)] == sp
            checked += 1
    assert checked > 0


def test_every_fact_has_a_document_stating_it(bundled_world: World) -> None:
    docs = {d.fact_id: d.text for d in bundled_world.documents}
    for fact in bundled_world.facts:
        assert fact.subject in docs[fact.id] and fact.object in docs[fact.id]


def test_edits_are_counterfactual_with_prompts(bundled_world: World) -> None:
    facts = {f.id: f for f in bundled_world.facts}
    for edit in bundled_world.edits:
        fact = facts[edit.fact_id]
        assert fact.split == "known" and fact.object == edit.old_object
        assert edit.new_object != edit.old_object
        assert edit.subject in edit.prompt
        assert len(edit.paraphrases) >= 2 and all(edit.subject in p for p in edit.paraphrases)
        assert len(edit.neighbourhood) >= 3
        for n in edit.neighbourhood:
            assert edit.subject not in n.text


def test_unanswerable_invented_entities_appear_nowhere(bundled_world: World) -> None:
    text = " ".join(d.text for d in bundled_world.documents)
    names = {f.subject for f in bundled_world.facts} | {f.object for f in bundled_world.facts}
    invented = [q for q in bundled_world.questions if q.kind == "unanswerable" and q.subject not in names]
    assert len(invented) >= 300
    for q in invented:
        assert q.subject not in text and q.answers == ()


def test_missing_facts_are_really_missing(bundled_world: World) -> None:
    has = {(f.subject, f.relation) for f in bundled_world.facts}
    for q in bundled_world.questions:
        if q.kind == "unanswerable":
            assert (q.subject, q.relation) not in has


def test_dev_test_split(bundled_world: World) -> None:
    dev = bundled_world.questions_in("dev")
    test = bundled_world.questions_in("test")
    assert len(dev) + len(test) == len(bundled_world.questions)
    assert 0.2 < len(dev) / len(bundled_world.questions) < 0.4
    for kind in ("known", "unknown", "edit", "unanswerable"):
        assert bundled_world.questions_in("dev", kind) and bundled_world.questions_in("test", kind)
    # both questions of one fact fall on the same side, so dev never hints at a test fact
    sides: dict[str, set[str]] = {}
    for q in bundled_world.questions:
        if q.fact_id:
            sides.setdefault(q.fact_id, set()).add(q.split)
    assert all(len(s) == 1 for s in sides.values())


def test_questions_answer_their_facts(bundled_world: World) -> None:
    facts = {f.id: f for f in bundled_world.facts}
    edits = {e.id: e for e in bundled_world.edits}
    for q in bundled_world.questions:
        if q.kind in ("known", "unknown"):
            assert q.answers == (facts[q.fact_id].object,)  # type: ignore[index]
        elif q.kind == "edit":
            assert q.answers == (edits[q.edit_id].new_object,)  # type: ignore[index]
        assert q.subject in q.text


def test_fill() -> None:
    assert fill("The CEO of {} is", "Nokia") == "The CEO of Nokia is"


def test_records_are_frozen(bundled_world: World) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        bundled_world.facts[0].object = "x"  # type: ignore[misc]
