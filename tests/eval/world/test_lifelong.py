"""The lifelong edit pool: deterministic, disjoint from the world's edits, never questions, shipped as built."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from eval.world._lifelong import build_lifelong_edits, lifelong_pool, load_lifelong_edits, write_lifelong_edits
from eval.world._pipeline import DATA_DIR
from tools.errors import WorldFormatError

if TYPE_CHECKING:
    from pathlib import Path

    from eval.world import World


def test_pool_covers_every_known_fact_once_and_ids_continue(bundled_world: World) -> None:
    edits = build_lifelong_edits(bundled_world)
    assert edits == build_lifelong_edits(bundled_world)  # deterministic
    assert [e.id for e in edits] == [f"e{i:04d}" for i in range(600, 600 + len(edits))]
    world_facts = {e.fact_id for e in bundled_world.edits}
    assert not world_facts & {e.fact_id for e in edits}
    known = {f.id: f for f in bundled_world.facts if f.split == "known"}
    assert {e.fact_id for e in edits} | world_facts == set(known)
    assert len(edits) + len(bundled_world.edits) >= 2000
    for edit in edits:
        fact = known[edit.fact_id]
        assert (edit.subject, edit.old_object, edit.relation) == (fact.subject, fact.object, fact.relation)
        assert edit.new_object != edit.old_object and edit.subject in edit.prompt
        assert edit.paraphrases and edit.neighbourhood
        assert all(edit.subject not in p.text for p in edit.neighbourhood)


def test_shipped_file_is_the_build_and_never_a_question(bundled_world: World) -> None:
    assert load_lifelong_edits(DATA_DIR, bundled_world) == build_lifelong_edits(bundled_world)
    lifelong_ids = {e.id for e in load_lifelong_edits(DATA_DIR)}
    assert not lifelong_ids & {q.edit_id for q in bundled_world.questions}
    assert [e.id for e in bundled_world.edits] == [f"e{i:04d}" for i in range(600)]  # the world's edits stay
    pool = lifelong_pool(bundled_world, DATA_DIR)
    assert pool.edits[:600] == bundled_world.edits and len(pool.edits) == 600 + len(lifelong_ids)


def test_a_bad_file_names_its_line(bundled_world: World, tmp_path: Path) -> None:
    edits = build_lifelong_edits(bundled_world)[:3]
    write_lifelong_edits((*edits[:2], dataclasses.replace(edits[2], fact_id="f99999")), tmp_path)
    with pytest.raises(WorldFormatError, match="f99999"):
        load_lifelong_edits(tmp_path, bundled_world)
    (tmp_path / "edits_lifelong.jsonl").write_text('{"id": "e1"}\nnot json\n', encoding="utf-8")
    with pytest.raises(WorldFormatError, match="line 1"):
        load_lifelong_edits(tmp_path)
    with pytest.raises(WorldFormatError, match="missing"):
        load_lifelong_edits(tmp_path / "nowhere")
