"""The policy's schema-phrasing step (issue 17): the answer in the relation's own templates where they all
overrule the answer to the user's words, its gates, the lazy gates' bounds, and its calibration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from agent import ModelView, PolicyThresholds, Signals
from agent._calibrate import calibrate
from agent._policy import decide
from agent.config import Home, PolicySettings, Settings, dump_settings, load_settings
from agent.retrieval import Citation, Evidence

# the question's words ("The company Acme is run by its CEO,") give a wrong name; the two schema templates
# asked as paraphrases ("Acme's CEO is", "The chief executive officer of Acme is") agree on the right one
T = PolicyThresholds(model=0.9, familiarity=-2.0, agreement=0.99, schema_model=0.8, schema_familiarity=-3.0)


def _view(text: str, prob: float) -> ModelView:
    return ModelView("prompt", text, prob, prob / 2)


def _signals(**kw: object) -> Signals:
    base: dict[str, object] = {
        "question": "The company Acme is run by its CEO,",
        "subject": "Acme",
        "relation": "company_ceo",
        "model": _view("Bob Smith", 0.7),
        "paraphrases": (_view("Jane Roe.", 0.95), _view("Jane Roe.", 0.85)),
        "agreement": 0.0,
        "familiarity": -1.5,
    }
    return Signals(**{**base, **kw})  # type: ignore[arg-type]


def test_the_schema_phrasings_answer_where_they_all_overrule_the_question() -> None:
    s = _signals()
    assert s.schema_view is not None and s.schema_confidence == pytest.approx(0.95)
    d = decide(s, T)
    assert (d.action, d.text, d.confidence) == ("parametric", "Jane Roe", pytest.approx(0.95))
    assert "schema phrasings p=0.95" in d.reason and "'Bob Smith'" in d.reason
    # off by default (and as calibrated without --schema-phrasing): the disagreement only vetoes
    assert not PolicyThresholds().schema_route
    assert decide(s, replace(T, schema_model=1.01)).action == "abstain"


@pytest.mark.parametrize(
    "change",
    [
        {"paraphrases": (_view("Jane Roe.", 0.95), _view("Max Mustermann.", 0.9))},  # the templates disagree
        {"paraphrases": (_view("Jane Roe.", 0.95),)},  # one paraphrase is no majority
        {"paraphrases": (_view("", 0.95), _view("", 0.9))},  # no answer
    ],
    ids=["split", "one", "empty"],
)
def test_no_schema_answer_without_agreeing_templates(change: dict[str, object]) -> None:
    s = _signals(**change)
    assert s.schema_view is None and s.schema_confidence == 0.0
    assert decide(s, T).action == "abstain"


def test_where_the_question_agrees_the_usual_step_decides() -> None:
    s = _signals(model=_view("Jane Roe", 0.7), agreement=1.0)  # 0.7 < 0.9: the model's own step says no
    assert s.schema_view is None
    assert decide(s, T).action == "abstain"
    sure = replace(s, model=_view("Jane Roe", 0.97))
    assert (decide(sure, T).action, decide(sure, T).text) == ("parametric", "Jane Roe")


def test_the_schema_step_has_its_own_gates() -> None:
    assert decide(_signals(familiarity=-3.5), T).action == "abstain"  # unfamiliar subject
    assert decide(_signals(paraphrases=(_view("Jane Roe", 0.7), _view("Jane Roe", 0.99))), T).action == "abstain"
    # the model says the same of a content-free subject: discounted by the prior's probability
    prior = _signals(prior=_view("Jane Roe", 0.5))
    assert prior.schema_confidence == pytest.approx(0.475) and decide(prior, T).action == "abstain"
    # paraphrases answered without probabilities say nothing
    assert _signals(unavailable=("first_token_prob",)).schema_confidence == 0.0


def test_memory_and_a_told_passage_still_overrule_the_schema_answer() -> None:
    passage = Evidence("The CEO of Acme is Max Mustermann.", 0.8, "memory", Citation(item_id="m1"))
    s = _signals(memory=(passage,), rag=_view("Max Mustermann", 0.2), rag_supported=True)
    d = decide(s, T)  # the RAG answer is not sure enough to answer, but it is in the passage and differs
    assert (d.action, d.reason) == ("abstain", "memory and model disagree")
    told = Evidence("These days Acme is run by Max.", 0.8, "memory", Citation(item_id="m2", who="user:ann"))
    d = decide(_signals(told=(told,)), T)
    assert d.action == "abstain" and "in words not naming 'Jane Roe'" in d.reason
    agrees = Evidence("These days Acme is run by Jane Roe.", 0.8, "memory", Citation(item_id="m3", who="user:ann"))
    assert decide(_signals(told=(agrees,)), T).text == "Jane Roe"


def test_the_lazy_gates_keep_the_schema_step_open() -> None:
    # familiar enough for the schema step, not for the model's own: not vetoed, the model may answer
    between = Signals("q", model=_view("Bob Smith", 0.7), familiarity=-2.5)
    assert not T.vetoes_model(between) and T.may_answer_from_model(between)
    assert T.vetoes_model(replace(between, familiarity=-3.5))
    assert not T.may_answer_from_model(replace(between, familiarity=-3.5))
    off = replace(T, schema_model=1.01)
    assert off.vetoes_model(between) and not off.may_answer_from_model(between)
    # decide reads nothing of the model where the gate vetoes it (what the collector then skips)
    vetoed = _signals(familiarity=-3.5)
    assert T.vetoes_model(vetoed)
    bare = replace(vetoed, model=None, paraphrases=(), agreement=None, prior=None, pmi=None)
    assert decide(bare, T) == decide(vetoed, T)


def _grade(answer: str, gold: Sequence[str]) -> bool:
    return answer in gold


def test_calibration_fits_the_schema_step_only_when_asked_and_within_the_budget() -> None:
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for _ in range(50):  # the question's words answer right, surely
        signals.append(_signals(model=_view("Jane Roe", 0.99), agreement=1.0, familiarity=-0.5))
        golds.append(("Jane Roe",))
    for _ in range(40):  # held-out words answer wrong; the templates agree on the right answer
        signals.append(_signals(familiarity=-1.0))
        golds.append(("Jane Roe",))
    for _ in range(30):  # unanswerable: the templates agree as surely, about a less familiar name
        signals.append(_signals(familiarity=-2.6))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0,), "agreement": (0.99,)}
    plain = calibrate(signals, golds, _grade, target=0.02, confidence=0.95, grid=small)
    assert not plain.thresholds.schema_route and plain.coverage == pytest.approx(50 / 90)
    fitted = calibrate(signals, golds, _grade, target=0.02, confidence=0.95, grid=small, schema_route=True)
    t = fitted.thresholds
    assert t.schema_route and -2.6 < t.schema_familiarity <= -1.0 and t.schema_model <= 0.95
    assert fitted.coverage == 1.0 and fitted.unanswerable_answered == 0.0 and fitted.hallucination_rate == 0.0
    # nothing to gain: the step stays off
    lone = calibrate(signals[:50], golds[:50], _grade, target=0.02, grid=small, schema_route=True)
    assert not lone.thresholds.schema_route


def test_the_schema_thresholds_round_trip_and_reach_the_agent(tmp_path: Path) -> None:
    from agent.wiring import policy_thresholds

    path = tmp_path / "config.toml"
    settings = Settings(policy=PolicySettings(schema_model=0.86, schema_familiarity=-1.75))
    path.write_text(dump_settings(settings), encoding="utf-8")
    loaded = load_settings(path)
    t = policy_thresholds(Home(root=tmp_path, settings=loaded))
    assert (t.schema_model, t.schema_familiarity) == (0.86, -1.75)
    assert PolicySettings().schema_model == 1.01  # off unless calibrated with --schema-phrasing
    with pytest.raises(ValueError):
        PolicySettings(schema_model=1.5)
