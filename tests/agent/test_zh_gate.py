"""The Chinese subject gate: a Chinese question keeps the memory passages that name what it asks about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.retrieval import HybridRetriever
from agent.zh_gate import SubjectKey, ZhSubjectGate
from kg import load_schema
from memory import Scope, VectorMemory
from tests.memory.fakes import HashEmbedder

WORLD = Scope(agent_id="world")


@pytest.fixture(scope="module")
def gate() -> ZhSubjectGate:
    return ZhSubjectGate(load_schema().zh_templates())


@pytest.mark.parametrize(
    ("question", "spans"),
    [
        ("「紅豆生南國」的下一句是什么？", ("紅豆生南國",)),  # quoted
        ("《论语》中「狂而不直」的下一句是什么？", ("论语", "狂而不直")),  # every quoted span
        ("「背包」中的「背」读什么？", ("背包", "背")),
        ("《蟬》是哪位诗人写的？", ("蟬",)),  # a one-character title
        ("请回答：太阳从哪边落下？", ("太阳从",)),  # the longest clause, cut at its question word
        ("Al Daayen坐落在哪个国家？", ("Al Daayen",)),  # Latin-script name
        ("谁是AOL的CEO？", ("AOL", "CEO")),
        ("希腊的首都是哪里？", ("希腊",)),  # the schema's @zh question template
        ("请问，法国的首都是哪里？", ("法国",)),  # ... its subject's last clause
        ("哪座城市是希腊的首都？", ("希腊",)),
        ("法國的首都在哪座城市？", ("法國",)),  # no template: the words before 的, the question cut off
        ("脑筋急转弯：一个数加上它自己等于二十，这个数是多少？", ("一个数加上它自己等于二十",)),  # longest piece
        ("谁的首都是巴黎？", ("的首都是巴黎",)),
    ],
)
def test_the_subject_spans_of_a_question(gate: ZhSubjectGate, question: str, spans: tuple[str, ...]) -> None:
    key = gate.key(question)
    assert key is not None and key.spans == spans


def test_english_questions_are_not_gated(gate: ZhSubjectGate) -> None:
    assert gate.key("Who is the CEO of AOL?") is None


def test_a_relation_question_needs_the_relation_stated(gate: ZhSubjectGate) -> None:
    key = gate.key("希腊的首都是哪里？")
    assert key is not None and "希腊的首都是" in key.statements
    assert key.admits("希腊的首都是雅典。")
    assert not key.admits("Coolock位于希腊。")  # names Greece, not its capital
    assert not key.admits("苏丹的首都是喀土穆。")


def test_a_passage_must_contain_every_span_folded() -> None:
    assert SubjectKey(("紅豆生南國",)).admits("红豆生南国，春来发几枝。")  # traditional == simplified
    assert SubjectKey(("论语", "狂而不直")).admits("《论语》：狂而不直，侗而不愿。")
    assert not SubjectKey(("论语", "狂而不直")).admits("《论语》：道之以政，齐之以刑。")
    assert not SubjectKey(("詠懷古蹟·其二",)).admits("《詠懷古蹟·其四》的作者是杜甫。")
    assert SubjectKey(("Al Daayen",)).admits("Al Daayen位于卡塔尔。")
    assert not SubjectKey(("Al Daayen",)).admits("Al Daayenx位于卡塔尔。")  # names are matched word by word
    assert SubjectKey(()).admits("anything")


def test_retrieval_keeps_the_subjects_passages_and_prefers_chinese(tmp_path: Path, gate: ZhSubjectGate) -> None:
    passages = [
        "《留別王維》的作者是孟浩然。",  # shares 孟浩然 with the question below, not its title
        "《塞下曲·林暗草驚風》的作者是盧綸。",
        "Chaville is a landmark in France.",
        "Chaville位于法国。",
        "Eerbeek is a landmark in the Netherlands.",
    ]
    with VectorMemory.open(tmp_path / "m", HashEmbedder()) as memory:
        memory.add_many([f"filler sentence {i}" for i in range(20)] + passages, scope=WORLD)
        none: Any = None
        gated = HybridRetriever(memory, none, none, none, fusion="rrf", zh_gate=gate)
        plain = HybridRetriever(memory, none, none, none, fusion="rrf")

        def texts(retriever: HybridRetriever, question: str) -> list[str]:
            return [h.item.text for h in retriever.memory_hits(question, k=3, scope=WORLD)]

        unknown = "《黃鶴樓送孟浩然之廣陵》的作者是谁？"  # memory holds nothing about this poem
        assert "《留別王維》的作者是孟浩然。" in texts(plain, unknown)
        assert texts(gated, unknown) == []
        assert texts(gated, "《塞下曲·林暗草驚風》是哪位诗人写的？") == ["《塞下曲·林暗草驚風》的作者是盧綸。"]
        assert texts(gated, "Chaville在哪个国家？") == ["Chaville位于法国。"]  # the Chinese passage only
        assert texts(gated, "Eerbeek在哪个国家？") == ["Eerbeek is a landmark in the Netherlands."]  # none in Chinese
        english = "Where is Chaville?"
        assert texts(gated, english) == texts(plain, english)  # English questions are not gated


@pytest.mark.parametrize("on", [True, False])
def test_the_home_setting_switches_the_gate(tmp_path: Path, on: bool) -> None:
    from agent.config import open_home
    from agent.wiring import open_working_memory

    (tmp_path / "config.toml").write_text(f"[memory]\nzh_subject_gate = {str(on).lower()}\n")
    with open_working_memory(open_home(tmp_path)) as wm:
        assert (wm.retriever.zh_gate is not None) is on
        if on:
            key = wm.retriever.zh_gate.key("希腊的首都是哪里？") if wm.retriever.zh_gate is not None else None
            assert key is not None and key.spans == ("希腊",)
