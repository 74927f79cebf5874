"""A passage a user told as free text about the question's subject and relation vetoes a model answer it
does not name (issue 17: edits kept as free text were answered with the model's old fact)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from agent import Agent, PolicyThresholds
from agent._answer import ModelView, Signals
from agent._policy import decide
from agent._question_links import QuestionLink
from agent._signals import SignalCollector
from agent.retrieval import Citation, Evidence
from agent.wiring import WorkingMemory
from kg import RelationLink
from memory import Scope, Triple
from tools.lm import Generation, HFLanguageModel

T = PolicyThresholds(kg_link=0.5, memory=0.5, rag_prob=0.3, require_support=True, model=0.6, familiarity=-4.0)


def _told(text: str, score: float, *, who: str = "user:alice", day: int = 1) -> Evidence:
    citation = Citation(item_id=f"m{day}", edit_id=f"e-{day}", who=who)
    return Evidence(text, score, "memory", citation, datetime(2026, 1, day, tzinfo=UTC))


def _signals(model: str, told: tuple[Evidence, ...]) -> Signals:
    return Signals(
        "What is the notable work of Chuck Lorre?",
        subject="Chuck Lorre",
        relation="notable_work",
        memory=told,
        told=told,
        model=ModelView("prompt", model, 0.99, 0.5),
        familiarity=-1.0,
    )


def test_a_told_passage_that_does_not_name_the_models_answer_vetoes_it() -> None:
    told = (_told("Chuck Lorre created the work Cascading Waterfall.", 0.70),)
    s = _signals("Two and a Half Men", told)
    d = decide(s, T)
    assert d.action == "abstain" and d.citations == told
    assert "user:alice told about Chuck Lorre's notable_work" in d.reason and "Two and a Half Men" in d.reason
    assert not T.may_answer_from_model(s)  # the lazy gates see the veto too: nothing more is measured
    # the same passage kept by a loaded document (not told), or left out of `told`, vetoes nothing
    assert decide(_signals("Two and a Half Men", ()), T).action == "parametric"


def test_a_told_passage_naming_the_answer_or_below_the_memory_threshold_lets_the_model_answer() -> None:
    naming = (_told("These days Chuck Lorre is best known for Two and a Half Men.", 0.70),)
    assert decide(_signals("Two and a Half Men", naming), T).action == "parametric"
    faint = (_told("Chuck Lorre created the work Cascading Waterfall.", 0.40),)
    assert decide(_signals("Two and a Half Men", faint), T).action == "parametric"
    assert T.may_answer_from_model(_signals("Two and a Half Men", faint))


def test_the_newest_told_passage_decides() -> None:
    old = _told("Chuck Lorre's best-known work is Two and a Half Men.", 0.80, day=1)
    new = _told("Chuck Lorre created the work Cascading Waterfall.", 0.60, day=2)
    assert decide(_signals("Two and a Half Men", (old, new)), T).action == "abstain"
    assert decide(_signals("Cascading Waterfall", (old, new)), T).action == "parametric"


def test_an_answer_named_only_inside_the_subjects_name_is_not_named_by_the_passage() -> None:
    told = (_told("wife of Zhou Rui has married Cassiopeia.", 0.77),)
    s = replace(_signals("Zhou Rui", told), subject="wife of Zhou Rui", relation="spouse")
    assert decide(s, T).action == "abstain"  # "Zhou Rui" is the subject's name, not its spouse
    assert decide(replace(s, model=ModelView("p", "Cassiopeia", 0.99, 0.5)), T).action == "parametric"


class _Relations:
    """A relation linker that reads every passage as ``relation`` (the direction it confuses)."""

    def __init__(self, relation: str) -> None:
        self.relation = relation

    def link(self, question: str, subject_mention: str | None = None, k: int = 3) -> list[RelationLink]:
        return [RelationLink(self.relation, 0.6, "{} was created by")]


class _NoNames:
    def find_mentions(self, text: str, *, namespaces: Sequence[str] | None = None) -> list[object]:
        return []


def test_told_passages_are_user_free_text_naming_the_subject_read_as_the_relation_or_its_inverse() -> None:
    def told_about(relation: str, inverses: dict[str, tuple[str, ...]]) -> list[str]:
        names: Any = _NoNames()  # stand-ins for the linkers: only these two are read
        linker: Any = _Relations(relation)
        collector = SignalCollector(cast(Any, None), names, linker, {}, cast(Any, None), inverses=inverses)
        link = QuestionLink("Chuck Lorre", "notable_work", 0.9, None)
        return [e.text for e in collector.told_about(link, passages)]

    kept = _told("Chuck Lorre created the work Cascading Waterfall.", 0.7)
    passages = [
        kept,
        _told("Chuck Lorre created the work Top Gear.", 0.7, who="world:d1"),  # a loaded document
        Evidence("Chuck Lorre created Mom.", 0.7, "memory", Citation(item_id="m9", who="user:bob",
                 triple=Triple("Chuck Lorre", "notable_work", "Mom"))),  # a triple was read: the KG has it
        _told("Ada Lovelace created the work Notes.", 0.7),  # another subject
    ]  # fmt: skip
    assert told_about("notable_work", {}) == [kept.text]
    assert told_about("creator", {"notable_work": ("creator",)}) == [kept.text]  # the inverse: the same fact
    assert told_about("creator", {}) == [] and told_about("spouse", {"notable_work": ("creator",)}) == []


class _Stubborn:
    """A model that answers every prompt with its old fact, sure of it (and "nobody" about the content-free
    subject), and gives no prompt scores."""

    def __init__(self, lm: HFLanguageModel, answer: str) -> None:
        self.name, self.prompt_format, self._answer = "stubborn", lm.prompt_format, answer

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        return [Generation("nobody" if "N/A" in p else self._answer, 0.99, 0.9) for p in prompts]


QUESTION = "Who is the CEO of Zorblax Corp?"


def _remember(wm: WorkingMemory, text: str, source: str, triple: Triple | None = None) -> None:
    wm.memory.add(text, scope=Scope(agent_id="default"), source=source, triple=triple)


@pytest.mark.parametrize("routed", [True, False], ids=["ask", "full-signals"])
def test_an_edit_kept_as_free_text_stops_the_models_old_answer(
    wm: WorkingMemory, gpt2: HFLanguageModel, routed: bool
) -> None:
    agent = Agent(wm, _Stubborn(gpt2, "Tim Cook"), thresholds=T)
    first = agent.ask(QUESTION)
    assert first.action == "parametric", first.reason  # nothing told yet: the model answers
    _remember(wm, "Zorblax Corp is headquartered in Oslo.", "user:alice")  # told, another relation
    _remember(wm, "Jane Roe is the chief executive officer of Zorblax Corp.", "world:d1")  # a document, not told
    assert agent.ask(QUESTION).action == "parametric"
    told = "These days Jane Roe is the chief executive of Zorblax Corp."
    _remember(wm, told, "user:alice")
    s = agent.signals([QUESTION])[0]
    assert [e.text for e in s.told] == [told] and s.subject == "Zorblax Corp" and s.relation == "company_ceo"
    answer = agent.ask(QUESTION) if routed else agent.decide(s)
    assert answer.action == "abstain" and answer.text == ""
    assert "user:alice told about Zorblax Corp's company_ceo" in agent.decide(s).reason
