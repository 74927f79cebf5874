"""The lexical channel: BM25 over jieba segmentation, filtered like the vector search, rebuilt from SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import Scope, VectorMemory, reciprocal_rank_fusion
from memory._lexical import segment
from tests.memory.fakes import HashEmbedder, ManualClock
from tools.errors import InvalidInputError

WORLD = Scope(agent_id="world")
DOCS = ["法国的首都是巴黎。", "德国的首都是柏林。", "白日依山盡，黃河入海流。", "Paris is the capital of France."]


def _fill(memory: VectorMemory) -> None:
    memory.add_many(DOCS, scope=WORLD)


def test_segment_folds_traditional_and_drops_function_words() -> None:
    assert segment("法國的首都是哪里？") == ["法国", "首都"]
    assert segment("Capital of 法国!") == ["capital", "of", "法国"]
    assert segment("🙂？！") == []


def test_chinese_questions_find_their_statement(memory: VectorMemory) -> None:
    _fill(memory)
    assert memory.search_lexical("法国的首都是哪里？", k=1, scope=WORLD)[0].item.text == DOCS[0]
    assert memory.search_lexical("「白日依山尽」的下一句是什么？", k=1)[0].item.text == DOCS[2]  # simplified question
    assert memory.search_lexical("What is the capital of France?", k=1)[0].item.text == DOCS[3]
    assert memory.search_lexical("🙂", k=3) == []  # no term: no hit, no error


def test_filters_time_and_versions(memory: VectorMemory, clock: ManualClock) -> None:
    _fill(memory)
    before = clock()
    clock.advance()
    item = memory.search_lexical("柏林", k=1)[0].item
    memory.update(item.id, text="德国的首都是波恩。")
    assert [h.item.text for h in memory.search_lexical("德国", k=5)] == ["德国的首都是波恩。"]
    assert [h.item.text for h in memory.search_lexical("柏林", k=5, as_of=before)] == [DOCS[1]]
    memory.add("柏林在德国。", scope=Scope(user_id="bob"))
    assert [h.item.text for h in memory.search_lexical("柏林", k=5, scope=Scope(user_id="bob"))] == ["柏林在德国。"]
    assert memory.search_lexical("柏林", k=5, scope=WORLD) == []


def test_bad_input_is_a_typed_error(memory: VectorMemory) -> None:
    with pytest.raises(InvalidInputError):
        memory.search_lexical("", k=1)
    with pytest.raises(InvalidInputError):
        memory.search_lexical("巴黎", k=0)


def test_index_is_saved_and_rebuilt_from_sqlite(tmp_path: Path) -> None:
    with VectorMemory.open(tmp_path / "m", HashEmbedder()) as memory:
        _fill(memory)
        assert memory.search_lexical("巴黎", k=1)[0].item.text == DOCS[0]
    files = tmp_path / "m" / "index" / "lexical"
    assert (files / "lexical.json").is_file()
    with VectorMemory.open(tmp_path / "m", HashEmbedder()) as memory:  # loaded: current
        assert memory.search_lexical("巴黎", k=1)[0].item.text == DOCS[0]
    (files / "rows.npy").write_bytes(b"garbage")
    with VectorMemory.open(tmp_path / "m", HashEmbedder()) as memory:  # damaged: rebuilt
        memory.add("日本的首都是东京。", scope=WORLD)
        assert memory.search_lexical("东京", k=1)[0].item.text == "日本的首都是东京。"
        assert memory.search_lexical("巴黎", k=1)[0].item.text == DOCS[0]


def test_a_sidecar_of_invalid_utf8_is_rebuilt(tmp_path: Path) -> None:
    with VectorMemory.open(tmp_path / "m", HashEmbedder()) as memory:
        _fill(memory)
        memory.search_lexical("巴黎", k=1)
    (tmp_path / "m" / "index" / "lexical" / "lexical.json").write_bytes(b"\xff\xfe{")
    with VectorMemory.open(tmp_path / "m", HashEmbedder()) as memory:
        assert memory.search_lexical("巴黎", k=1)[0].item.text == DOCS[0]


def test_reciprocal_rank_fusion(memory: VectorMemory) -> None:
    _fill(memory)
    a, b, c = (memory.search_lexical(t, k=1)[0] for t in ("巴黎", "柏林", "黄河"))
    fused = reciprocal_rank_fusion([[a, b], [b, c]], k=60)
    assert [h.item.text for h in fused] == [b.item.text, a.item.text, c.item.text]
    assert fused[0].score == pytest.approx((1 / 62 + 1 / 61) / (2 / 61)) and 0 < fused[-1].score < 0.5
    assert reciprocal_rank_fusion([[a]])[0].score == pytest.approx(1.0)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[a]], k=0)
