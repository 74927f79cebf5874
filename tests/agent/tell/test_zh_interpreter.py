"""Telling and asking in Chinese: the @zh clozes read statements, Chinese names link without word boundaries."""

from __future__ import annotations

import pytest

from agent import Agent
from agent.tell import ZhInterpreter
from agent.tell._records import Interpretation
from agent.wiring import WorkingMemory
from kg import EntityLinker, load_schema
from memory import Triple
from tools.errors import ContradictoryStatementError, InvalidInputError


class _English:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def interpret(self, text: str) -> Interpretation:
        self.seen.append(text)
        return Interpretation("chitchat")


@pytest.fixture
def zh() -> ZhInterpreter:
    return ZhInterpreter(load_schema(), EntityLinker(), _English())


@pytest.mark.parametrize(
    ("text", "triple"),
    [
        ("法国的首都是巴黎。", Triple("法国", "capital", "巴黎")),
        ("其实，法国的首都现在是巴黎！", Triple("法国", "capital", "巴黎")),  # lead-in, modal, full-width "！"
        ("法國的首都是巴黎", Triple("法國", "capital", "巴黎")),  # traditional characters, no final punctuation
        ("法国🇫🇷的首都是「巴黎」🎉", Triple("法国", "capital", "巴黎")),  # emoji and brackets around names
        ("Acme的CEO是Jane Roe。", Triple("Acme", "company_ceo", "Jane Roe")),  # mixed scripts
        ("阿里巴巴的总部位于杭州。", Triple("阿里巴巴", "company_hq", "杭州")),  # longest template first
        ("埃菲尔铁塔位于法国。", Triple("埃菲尔铁塔", "landmark_in_country", "法国")),
    ],
)
def test_statements_become_claims(zh: ZhInterpreter, text: str, triple: Triple) -> None:
    reading = zh.interpret(text)
    assert reading.kind == "edit" and [c.triple for c in reading.claims] == [triple]


def test_questions_negations_and_chitchat(zh: ZhInterpreter) -> None:
    assert zh.interpret("法国的首都是哪里？").kind == "question"
    assert zh.interpret("谁是阿里巴巴的首席执行官").kind == "question"  # no "？", a question word
    assert zh.interpret("法国的首都不是里昂。").kind == "free_text"
    assert zh.interpret("谢谢！").kind == "chitchat"


def test_english_goes_to_the_english_interpreter() -> None:
    english = _English()
    ZhInterpreter(load_schema(), EntityLinker(), english).interpret("The CEO of Acme is Jane Roe.")
    assert english.seen == ["The CEO of Acme is Jane Roe."]


def test_bad_input(zh: ZhInterpreter) -> None:
    with pytest.raises(ContradictoryStatementError):
        zh.interpret("法国的首都是巴黎。法国的首都是里昂。")
    with pytest.raises(InvalidInputError):
        zh.interpret("  ")


def test_tell_then_ask_in_chinese(agent: Agent, wm: WorkingMemory) -> None:
    result = agent.tell("法国的首都是巴黎。", user="tess", namespace="chat")
    assert result.status == "applied" and result.triples == (Triple("法国", "capital", "巴黎"),)
    evidence = wm.retriever.kg_evidence("法國的首都是哪里？", namespaces=["chat", "world"])  # traditional question
    assert [e.citation.triple for e in evidence] == [Triple("法国", "capital", "巴黎")]
    answer = agent.ask("法国的首都是哪里？", namespace="chat")
    assert answer.text == "巴黎" and answer.action == "kg"
