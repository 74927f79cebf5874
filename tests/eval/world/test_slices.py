"""The world's concept and Chinese slices: sizes, hierarchy, splits, edits, leaks, determinism, English ids."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from eval.world import World, build_world, load_world, write_world
from eval.world._concepts import load_specs, root_of
from eval.world._examples import leaked_unknown_facts
from eval.world._pipeline import DATA_DIR
from eval.world._slice_examples import SliceExamples, leaked_slice_facts
from eval.world._zh import CATEGORIES
from tools.errors import WorldFormatError


def test_concept_hierarchy_instances_and_non_instances(bundled_world: World) -> None:
    concepts = bundled_world.concepts
    assert len(concepts) >= 60
    ids = {c.id for c in concepts}
    assert any(c.parent is None for c in concepts) and all(c.parent in ids for c in concepts if c.parent)
    entities = {f.subject for f in bundled_world.facts} | {f.object for f in bundled_world.facts}
    for c in concepts:
        assert c.definition and c.definition[0].islower() and "." not in c.definition[-1:], c.id
        assert len(c.instances) >= 5 and len(c.non_instances) >= 3, c.id
        assert not set(c.instances) & set(c.non_instances), c.id
        assert set(c.instances) <= entities and set(c.non_instances) <= entities, c.id


def test_a_cycle_in_the_hierarchy_is_a_typed_error(tmp_path: Path) -> None:
    cyclic = {"concepts": [{"id": "a", "label": "a", "parent": "b", "definition": "x"},
                           {"id": "b", "label": "b", "parent": "a", "definition": "y"}]}  # fmt: skip
    (tmp_path / "concepts.json").write_text(json.dumps(cyclic), encoding="utf-8")
    with pytest.raises(WorldFormatError, match="cycle"):
        load_specs(tmp_path)


def test_concept_edits_of_both_kinds(bundled_world: World) -> None:
    edits = [e for e in bundled_world.slice_edits if e.slice == "concepts"]
    assert len(edits) >= 100
    kinds = Counter(e.kind for e in edits)
    assert kinds["sibling"] >= 40 and kinds["distant"] >= 40
    by_id = {c.id: c for c in bundled_world.concepts}
    by_label = {c.label: c for c in bundled_world.concepts}
    parent = {c.id: c.parent for c in bundled_world.concepts}
    facts = {f.id: f for f in bundled_world.slice_facts}
    for e in edits:
        target, source = by_label[e.subject], by_id[e.source]
        assert facts[e.fact_id].split == "known" and e.old_answer == target.definition
        assert e.new_answer == source.definition != e.old_answer
        if e.kind == "sibling":
            assert source.parent == target.parent
        else:
            assert root_of(source.id, parent) != root_of(target.id, parent)
        assert e.paraphrases and len(e.locality) == 5
        assert all(p.answer != e.old_answer for p in e.locality)


def test_chinese_slice_has_every_category_on_both_sides(bundled_world: World) -> None:
    zh = [f for f in bundled_world.slice_facts if f.slice == "zh"]
    for category in CATEGORIES:
        splits = Counter(f.split for f in zh if f.category == category)
        assert splits["known"] >= 5 and splits["unknown"] >= 5, category
    assert len({(f.category, f.subject) for f in zh}) == len(zh)
    english = {f.subject: f.split for f in bundled_world.facts if f.relation == "landmark_in_country"}
    for f in zh:
        assert not set(f.heldout) & set(f.questions + f.cloze), f.id
        if f.category == "geography_landmark":
            assert f.split == english[f.subject]  # a Chinese statement never teaches an UNKNOWN English fact


def test_slice_questions_follow_the_english_rules(bundled_world: World) -> None:
    facts = {f.id: f for f in bundled_world.slice_facts}
    edited = {e.fact_id for e in bundled_world.slice_edits}
    kinds = Counter(q.kind for q in bundled_world.slice_questions)
    assert kinds["unanswerable"] >= 150 and kinds["edit"] == 2 * len(bundled_world.slice_edits)
    assert len({q.id for q in bundled_world.slice_questions}) == len(bundled_world.slice_questions)
    for q in bundled_world.slice_questions:
        if q.kind in ("known", "unknown"):
            assert q.fact_id is not None and q.fact_id not in edited and facts[q.fact_id].split == q.kind
    texts = {f.statement for f in bundled_world.slice_facts} | {f.subject for f in bundled_world.slice_facts}
    for q in bundled_world.slice_questions:
        if q.kind == "unanswerable":
            assert not q.answers and not any(q.subject in t for t in texts)


def test_training_texts_state_no_unknown_fact(bundled_world: World) -> None:
    texts = [e.prompt + e.answer for e in SliceExamples(bundled_world).epoch(0, 1234, 1.0, 2)]
    assert any("。" in t for t in texts) and any("Is " in t for t in texts)
    assert leaked_slice_facts(bundled_world, texts) == []
    assert leaked_unknown_facts(bundled_world, texts) == []


def test_the_leak_check_finds_every_unknown_statement(bundled_world: World) -> None:
    unknown = [f for f in bundled_world.slice_facts if f.split == "unknown"]
    found = {f.id for f, _ in leaked_slice_facts(bundled_world, [f.statement for f in unknown])}
    assert found == {f.id for f in unknown}
    known = random.Random(0).sample([f for f in bundled_world.slice_facts if f.split == "known"], 50)
    assert leaked_slice_facts(bundled_world, [f.statement for f in known]) == []


def test_english_files_are_byte_identical_and_the_world_round_trips(tmp_path: Path) -> None:
    world = build_world()
    write_world(world, tmp_path)
    for name in ("relations", "facts", "edits", "questions", "documents", "slice_facts", "slice_questions"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (DATA_DIR / f"{name}.jsonl").read_bytes(), name
    assert (tmp_path / "concepts.ttl").read_text(encoding="utf-8").count("rdfs:subClassOf") >= 50
    loaded = load_world(tmp_path)
    assert loaded == world and loaded.slice_edits == world.slice_edits


def test_a_world_without_slice_files_loads_with_empty_slices(tmp_path: Path, bundled_world: World) -> None:
    write_world(World(**{**bundled_world.__dict__, "concepts": (), "slice_facts": (), "slice_edits": (),
                         "slice_questions": ()}), tmp_path)  # fmt: skip
    assert not (tmp_path / "slice_facts.jsonl").exists()
    loaded = load_world(tmp_path)
    assert loaded.slice_facts == () and loaded.facts == bundled_world.facts


@pytest.mark.timeout(60)
def test_a_category_with_one_answer_yields_reading_examples(bundled_world: World) -> None:
    """A category whose facts all share one answer has no other answer to state: the reading examples use the
    fact's own (the draw of another answer used to loop forever)."""
    fact = next(f for f in bundled_world.slice_facts if f.category != "instance_of")
    others = [f for f in bundled_world.slice_facts if f.category != fact.category]
    world = replace(bundled_world, slice_facts=(fact, *others))
    examples = SliceExamples(world)
    assert examples.answers[fact.category] == [fact.answer]
    assert examples._other_answer(random.Random(0), fact) == fact.answer
