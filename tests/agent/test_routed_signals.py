"""``Agent.ask`` measures only the signals that can change the policy's decision, and decides as if it had all."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import pytest

from agent import Agent, Answer, PolicyThresholds
from agent._answer import ModelView, Signals
from agent._policy import decide
from agent.wiring import WorkingMemory
from eval.world import World
from tests.agent.tell.conftest import unknown_fact
from tools.lm import Generation, HFLanguageModel, Score

# the default thresholds, and ones that let the model answer often so that familiarity and pmi decide
LENIENT = PolicyThresholds(model=0.05, familiarity=-6.0, pmi=0.25)
# ... and with the schema-phrasing step on, open to less familiar subjects than the model's own step
SCHEMA = replace(PolicyThresholds(), schema_model=0.3, schema_familiarity=-8.0)
MORE = (  # bench.ask_load's questions the small world's KG does not answer: familiar and unfamiliar subjects
    "Who is the mother of Isaac Newton?",
    "Who is the CEO of Qantas?",
    "Who is the father of Marie Curie?",
    "Which university did Pivae Rolvrind attend?",
    "Who is the spouse of Barack Obama?",
)


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
    [(True, LENIENT), (False, PolicyThresholds()), (True, SCHEMA), (False, SCHEMA)],
    ids=["staged-lenient", "batched-default", "staged-schema", "batched-schema"],
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
    sure = Signals("q", subject="France", model=_view("Paris", 0.9))
    assert t.may_answer_from_model(sure)  # nothing else measured yet: the model may still answer
    assert not t.may_answer_from_model(
        Signals("q", subject="France", model=_view("Paris", 0.4))
    )  # agreement can only lower 0.4
    assert not t.may_answer_from_model(Signals("q", subject="France", model=_view("", 0.9)))  # no answer
    assert not t.may_answer_from_model(
        Signals("q", subject="France", model=_view("Paris", 0.9), familiarity=-5.0)
    )  # vetoed
    assert t.may_answer_from_model(Signals("q", subject="France", model=_view("Paris", 0.9), familiarity=-3.0))
    halved = Signals(
        "q", subject="France", model=_view("Paris", 0.9), paraphrases=(_view("Lyon", 0.9),) * 2, agreement=0.5
    )
    assert not t.may_answer_from_model(halved)  # 0.45 < 0.5
    assert not t.may_answer_from_model(Signals("q", model=_view("Paris", 0.9)))  # names nothing: final


def _same_answer(a: Answer, b: Answer, *, reason: bool = True) -> bool:
    return (
        (a.action, a.text, a.citations) == (b.action, b.text, b.citations)
        and abs(a.confidence - b.confidence) < 1e-4
        and (not reason or a.reason == b.reason)
    )


@pytest.mark.parametrize("thresholds", [PolicyThresholds(), LENIENT, SCHEMA], ids=["default", "lenient", "schema"])
def test_gated_asks_answer_as_the_full_measurement_with_fewer_prompts(
    wm: WorkingMemory, gpt2: HFLanguageModel, small_world: World, thresholds: PolicyThresholds
) -> None:
    """Familiarity first and unread RAG answers skipped (a batched model): the same action, text, citations,
    confidence and reason as with every signal measured, on known, unknown and unanswerable world questions."""
    lm = _Counting(gpt2, per_prompt=False)
    agent = Agent(wm, lm, thresholds=thresholds)
    questions = _questions(small_world) + list(MORE)
    full = [agent.decide(s) for s in agent.signals(questions)]
    counts = {}
    for first in (False, True):
        agent.collector.lazy_gates = first
        lm.prompts = 0
        routed = agent.ask_many(questions)
        counts[first] = lm.prompts
        # (without familiarity first, an abstention's reason names what fell short among what was measured)
        same = [_same_answer(a, b, reason=first) for a, b in zip(routed, full, strict=True)]
        assert all(same), [
            (a.action, a.reason, b.action, b.reason) for a, b, ok in zip(routed, full, same, strict=True) if not ok
        ]
    signals = [a.signals for a in routed if a.signals is not None]
    vetoed = [s for s in signals if thresholds.vetoes_model(s)]
    assert vetoed and all(s.model is None and not s.paraphrases and s.prior is None for s in vetoed)
    assert any(s.rag is None and s.memory for s in signals)  # a RAG answer the policy would not read: not asked
    # the gates cannot hide a needed prompt: where the model may answer, everything it needs was measured
    chosen = [a.signals for a in routed if a.action == "parametric" and a.signals is not None]
    if thresholds == LENIENT:
        assert chosen
    assert all(s.paraphrases and s.prior is not None and s.familiarity is not None for s in chosen)
    assert counts[True] < counts[False]


def _signal_cases() -> list[Signals]:
    from agent.retrieval import Citation, Evidence

    def passage(score: float) -> Evidence:
        cited = Citation(item_id="m1")
        return Evidence(text="Lyon is where Acme is based.", score=score, origin="memory", citation=cited)

    out = []
    # the paraphrases split (agreement 0.5), or both overrule the model's answer (a schema answer, "Rome")
    splits = ((_view("Paris", 0.9), _view("Rome", 0.5)), (_view("Rome", 0.9), _view("Rome", 0.8)))
    for familiarity, top, supported, paras in itertools.product(
        (-9.0, -5.0, -1.0, None), (0.2, 0.44, 0.46, 0.9), (False, True), splits
    ):
        out.append(
            Signals(
                "Where is Acme based?",
                subject="Acme",
                memory=(passage(top),),
                rag=_view("Lyon", 0.8),
                rag_supported=supported,
                model=_view("Paris", 0.9),
                paraphrases=paras,
                agreement=sum(p.text == "Paris" for p in paras) / 2,
                prior=_view("Paris", 0.3),
                familiarity=familiarity,
                pmi=0.1,
            )
        )
    return out


@pytest.mark.parametrize("thresholds", [PolicyThresholds(), LENIENT, PolicyThresholds(model=0.1, memory=0.45), SCHEMA])
def test_what_the_gates_skip_is_what_decide_never_reads(thresholds: PolicyThresholds) -> None:
    """``vetoes_model`` and ``reads_rag`` are exact: removing the signals they let the collector skip leaves
    the whole decision (action, text, confidence, citations, reason) as it was."""
    vetoes = reads = needed_model = needed_rag = 0
    for s in _signal_cases():
        d = decide(s, thresholds)
        bare_model = replace(s, model=None, paraphrases=(), agreement=None, prior=None, pmi=None)
        bare_rag = replace(s, rag=None, rag_supported=False)
        if thresholds.vetoes_model(s):
            vetoes += 1
            assert decide(bare_model, thresholds) == d
        else:  # ... and they are not loose: where they let nothing be skipped, skipping changes some decisions
            needed_model += decide(bare_model, thresholds) != d
        if not thresholds.reads_rag(s):
            reads += 1
            assert decide(bare_rag, thresholds) == d
        else:
            needed_rag += decide(bare_rag, thresholds) != d
    assert vetoes and reads and needed_model and needed_rag


def test_the_signal_cases_exercise_the_schema_step() -> None:
    """The cases above include schema answers the step gives (so the gates are checked where it acts)."""
    chosen = [decide(s, SCHEMA) for s in _signal_cases()]
    assert any(d.reason.startswith("schema phrasings") and d.text == "Rome" for d in chosen)
