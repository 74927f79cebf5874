"""The world-zh audit dataset: Chinese questions per CKnowEdit category, and the Chinese slice in memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from eval.audit import load_dataset
from eval.audit._world_zh import _restated, prepare_zh_memory
from eval.world import World


def test_world_zh_test_questions_are_categorised_by_category_and_kind() -> None:
    questions = load_dataset("world-zh:test").questions
    assert questions and all(q.id.startswith("zq") for q in questions)
    categories = {q.category for q in questions}
    assert {"poetry_next/known", "phonetic/unknown", "idiom/unanswerable", "saying/edited"} <= categories
    assert all((not q.answerable) == q.category.endswith("/unanswerable") for q in questions)


def test_an_edit_statement_carries_the_new_answer() -> None:
    assert _restated("寥落古行宮，宮花寂寞紅。", "宮花寂寞紅", "寒食東風") == "寥落古行宮，寒食東風。"


def test_zh_memory_is_loaded_once_and_found_by_words(tmp_path: Path, bundled_world: World, minilm: Any) -> None:
    from agent.config import open_home
    from agent.wiring import open_working_memory
    from memory import Scope

    unknown = [f for f in bundled_world.slice_facts if f.language == "zh" and f.split == "unknown"][:3]
    edits = [e for e in bundled_world.slice_edits if e.slice == "zh"][:2]
    edited = [f for f in bundled_world.slice_facts if f.id in {e.fact_id for e in edits}]
    small = replace(bundled_world, slice_facts=(*unknown, *edited), slice_edits=tuple(edits))
    with open_working_memory(open_home(tmp_path / "home"), embedder=minilm) as wm:
        assert prepare_zh_memory(wm, small, documents_before=0, edits_before=0, edits_scope="world-edits") == (3, 2)
        assert prepare_zh_memory(wm, small, documents_before=0, edits_before=0, edits_scope="world-edits") == (0, 0)
        hit = wm.memory.search_lexical(unknown[0].questions[0], k=1, scope=Scope(agent_id="world"))[0]
        assert hit.item.text == unknown[0].statement
        told = wm.memory.search_lexical(edits[0].subject, k=1, scope=Scope(agent_id="world-edits"))[0]
        assert edits[0].new_answer in told.item.text
