"""``Agent.ask`` measures only the signals that can change the policy's decision, and decides as if it had all."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agent import Agent, PolicyThresholds
from agent._answer import ModelView, Signals
from agent.wiring import WorkingMemory
from eval.world import World
from tests.agent.tell.conftest import unknown_fact
from tools.lm import Generation, HFLanguageModel, Score

# the default thresholds, and ones that let the model answer often so that familiarity and pmi decide
LENIENT = PolicyThresholds(model=0.05, familiarity=-6.0, pmi=0.25)


class _Counting:
    """The reference model, counting the prompts it is sent; ``one_request_per_prompt`` as a served model."""

    def __init__(self, lm: HFLanguageModel, *, per_prompt: bool) -> None:
        self._lm, self.name, self.prompt_format = lm, lm.name, lm.prompt_format
        self.one_request_per_prompt = per_prompt
        self.prompts = 0

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        self.prompts += len(prompts)
        return self._lm.generate(prompts, max_new_tokens)

    def score(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[Score]:
        self.prompts += len(prompts)
        return self._lm.score(prompts, continuations)


class _CountingServed(_Counting):
    """... and answering paraphrases without probabilities, as :class:`tools.lm.ServedLanguageModel` does."""

    def generate_texts(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Generation]:
        return [Generation(g.text) for g in self.generate(prompts, max_new_tokens)]


def _questions(world: World) -> list[str]:
    picked: list[str] = []
    for kind in ("known", "unknown", "unanswerable"):
        picked += [q.text for q in world.questions if q.kind == kind][:8]
    return picked


@pytest.mark.parametrize(
    ("per_prompt", "thresholds"),
    [(True, LENIENT), (False, PolicyThresholds())],
    ids=["staged-lenient", "batched-default"],
)
def test_routed_asks_decide_as_the_full_signals_do_with_fewer_prompts(
    wm: WorkingMemory, gpt2: HFLanguageModel, small_world: World, per_prompt: bool, thresholds: PolicyThresholds
) -> None:
    lm = (_CountingServed if per_prompt else _Counting)(gpt2, per_prompt=per_prompt)
    agent = Agent(wm, lm, thresholds=thresholds)
    questions = _questions(small_world)
    full = [agent.decide(s) for s in agent.signals(questions)]
    all_prompts, lm.prompts = lm.prompts, 0
    before = agent.work()
    routed = agent.ask_many(questions)
    assert [(a.action, a.text) for a in routed] == [(a.action, a.text) for a in full]
    assert {a.action for a in full} >= {"kg", "abstain"}  # the sample exercises more than one route
    if thresholds == LENIENT:  # ... and familiarity and pmi decide some
        assert "parametric" in {a.action for a in full}
    assert lm.prompts < all_prompts
    assert (agent.work() - before).model_prompts == lm.prompts  # every prompt the model ran is counted once
    # ... and against each question that asked it (a prompt two questions share runs once, counts for both)
    assert sum(a.model_calls for a in routed) >= lm.prompts


def test_a_question_the_kg_answers_costs_no_model_call(
    wm: WorkingMemory, gpt2: HFLanguageModel, small_world: World
) -> None:
    lm = _Counting(gpt2, per_prompt=True)
    fact = unknown_fact(small_world, "company_hq")
    answer = Agent(wm, lm).ask(small_world.relation("company_hq").questions[0].replace("{}", fact.subject))
    assert (answer.action, answer.text, answer.model_calls, lm.prompts) == ("kg", fact.object, 0, 0)


def _view(text: str, prob: float) -> ModelView:
    return ModelView("q", text, prob, prob)


def test_may_answer_from_model_bounds_the_decision() -> None:
    t = PolicyThresholds(model=0.5, familiarity=-4.0, pmi=0.0)
    sure = Signals("q", model=_view("Paris", 0.9))
    assert t.may_answer_from_model(sure)  # nothing else measured yet: the model may still answer
    assert not t.may_answer_from_model(Signals("q", model=_view("Paris", 0.4)))  # agreement can only lower 0.4
    assert not t.may_answer_from_model(Signals("q", model=_view("", 0.9)))  # no answer
    assert not t.may_answer_from_model(Signals("q", model=_view("Paris", 0.9), familiarity=-5.0))  # vetoed
    assert t.may_answer_from_model(Signals("q", model=_view("Paris", 0.9), familiarity=-3.0))
    halved = Signals("q", model=_view("Paris", 0.9), paraphrases=(_view("Lyon", 0.9),) * 2, agreement=0.5)
    assert not t.may_answer_from_model(halved)  # 0.45 < 0.5
