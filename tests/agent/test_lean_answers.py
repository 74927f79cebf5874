"""The lean runtime changes no answer (issue 30): the same agent on lean and on ``transformers``' models.

Known, unknown and unanswerable world questions, asked one at a time and as one batch, get the same text,
action, citations and model calls, and a confidence within 1e-5, with the bundled GPT-2 and LLaMA loaded
lean (:class:`LeanLanguageModel`) and loaded by ``transformers`` (:class:`HFLanguageModel`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import Agent, Answer, PolicyThresholds
from agent.wiring import WorkingMemory
from eval.world import World
from tests.conftest import REPO
from tools.lm import HFLanguageModel, LeanLanguageModel


def _questions(world: World) -> list[str]:
    picked: list[str] = []
    for kind in ("known", "unknown", "unanswerable"):
        picked += [q.text for q in world.questions if q.kind == kind][:8]
    return picked


def _key(a: Answer) -> tuple[object, ...]:
    return (a.text, a.action, a.citations, a.model_calls)


@pytest.mark.parametrize("model", ["gpt2-world", "llama-world"])
def test_lean_and_transformers_models_give_the_same_answers(wm: WorkingMemory, small_world: World, model: str) -> None:
    path = REPO / "eval" / "world" / "models" / model
    hf, lean = HFLanguageModel.load(path, device="cpu"), LeanLanguageModel.load(path, device="cpu")
    questions = _questions(small_world)
    reference, agent = Agent(wm, hf, thresholds=PolicyThresholds()), Agent(wm, lean, thresholds=PolicyThresholds())
    want = [reference.ask(q) for q in questions] + reference.ask_many(questions)
    got = [agent.ask(q) for q in questions] + agent.ask_many(questions)
    assert len({a.action for a in want}) > 1  # the questions reach more than one route
    for w, g in zip(want, got, strict=True):
        assert _key(g) == _key(w) and abs(g.confidence - w.confidence) < 1e-5
    assert lean.runtime == "lean"  # answering never needed transformers' model


def test_the_default_stack_with_its_tell_pipeline_answers_lean(tmp_path: Path) -> None:
    from agent.config import open_home
    from agent.wiring import open_agent

    agent = open_agent(open_home(tmp_path / "home"))  # with_tell: the server's and chat's stack
    try:
        assert isinstance(agent.lm, LeanLanguageModel)
        assert agent.ask("Who is the CEO of Nokia?").action
        assert agent.lm.runtime == "lean"  # building the tell pipeline and answering loaded no transformers model
    finally:
        agent.close()
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "config.toml").write_text('[runtime]\nlean = "off"\n', encoding="utf-8")
    agent = open_agent(open_home(tmp_path / "off"), with_tell=False)
    try:
        assert type(agent.lm) is HFLanguageModel
    finally:
        agent.close()


def test_a_question_opening_with_its_subject_is_answered_on_the_lean_model(
    wm: WorkingMemory, small_world: World
) -> None:
    """No words before the linked name: its familiarity row starts at the prompt's opening ("Q:"); an empty
    prompt made the lean scorer's position mask empty (a raw RuntimeError out of ``factagent ask``)."""
    lean = LeanLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")
    fact = next(f for f in small_world.facts if f.relation == "company_hq" and f.split == "known")
    answer = Agent(wm, lean, thresholds=PolicyThresholds()).ask(f"{fact.subject} has its headquarters in which city?")
    assert answer.signals is not None and answer.signals.subject == fact.subject
    assert answer.signals.familiarity is not None and answer.signals.familiarity < 0
