"""The routing policy, its signals' helpers and calibration, on hand-built signals (no model)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from agent import ModelView, PolicyThresholds, Signals
from agent._calibrate import binomial_cdf, calibrate, unanswerable_budget
from agent._policy import decide
from agent._question_links import capitalised_span
from agent._signals import answers_agree, supported_by
from agent.config import PolicySettings, Settings, dump_settings, load_settings
from agent.retrieval import Citation, Evidence
from memory import Triple
from tools.errors import InvalidInputError


def _kg(obj: str, score: float = 1.0) -> Evidence:
    triple = Triple("Acme", "company_ceo", obj)
    return Evidence(f"Acme — CEO — {obj}.", score, "kg", Citation(assertion_id="a1", triple=triple, edit_id="e-1"))


def _mem(text: str, score: float) -> Evidence:
    return Evidence(text, score, "memory", Citation(item_id="m1"))


def _view(text: str, prob: float) -> ModelView:
    return ModelView("prompt", text, prob, prob / 2)


def _signals(**kw: object) -> Signals:
    base: dict[str, object] = {"question": "Who is the CEO of Acme?", "subject": "Acme", "relation": "company_ceo"}
    return Signals(**{**base, **kw})  # type: ignore[arg-type]


T = PolicyThresholds(kg_link=0.5, memory=0.5, rag_prob=0.3, require_support=True, model=0.6, familiarity=-4.0)


def test_a_kg_fact_wins_over_a_confident_model_that_disagrees() -> None:
    s = _signals(kg=(_kg("Jane Roe"),), model=_view("Tim Cook", 0.99), familiarity=-0.1)
    d = decide(s, T)
    assert (d.action, d.text) == ("kg", "Jane Roe")
    assert d.citations[0].citation.edit_id == "e-1"


def test_retrieval_needs_a_supported_answer_next_to_the_subject() -> None:
    memory = (_mem("The CEO of Acme is Jane Roe.", 0.8),)
    supported = _signals(memory=memory, rag=_view("Jane Roe", 0.7), rag_supported=True)
    assert decide(supported, T).action == "retrieval"
    unsupported = _signals(memory=memory, rag=_view("Bob", 0.7), rag_supported=False)
    assert decide(unsupported, T).action == "abstain"
    assert supported_by("Jane Roe", [m.text for m in memory], "Acme")
    assert not supported_by("Jane Roe", ["The CEO of Initech is Jane Roe."], "Acme")


def test_the_model_answers_only_when_confident_consistent_and_familiar() -> None:
    paras = (_view("Tim Cook.", 0.9), _view("Tim Cook", 0.8))
    s = _signals(model=_view("Tim Cook", 0.9), paraphrases=paras, agreement=1.0, familiarity=-0.2)
    assert decide(s, T).action == "parametric"
    half = _signals(model=_view("Tim Cook", 0.9), paraphrases=paras, agreement=0.5, familiarity=-0.2)
    assert decide(half, T).action == "abstain"  # 0.9 x 0.5 < 0.6
    unfamiliar = _signals(model=_view("Tim Cook", 0.99), agreement=1.0, familiarity=-11.0)
    d = decide(unfamiliar, T)
    assert d.action == "abstain" and "unfamiliar" in d.reason


def test_an_answer_the_model_gives_for_any_subject_is_discounted() -> None:
    s = _signals(model=_view("actor", 0.9), agreement=1.0, prior=_view("actor", 0.8), familiarity=-0.1)
    assert s.prior_agrees and s.model_confidence == pytest.approx(0.9 * 0.2)
    assert decide(s, T).action == "abstain"


def test_abstaining_says_why() -> None:
    d = decide(_signals(model=_view("x", 0.1)), T)
    assert d.action == "abstain" and "no kg fact" in d.reason and "no memory hit" in d.reason


@pytest.mark.parametrize(
    ("question", "span"),
    [
        ("Which university did Pivae Rolvrind attend?", "Pivae Rolvrind"),
        ("Who leads Alibaba Group as chief executive officer?", "Alibaba Group"),
        ("What is Neze Tiothkrithzio's profession?", "Neze Tiothkrithzio"),
        ("Where is the University of Jena?", "University of Jena"),
        ("who is it?", None),
    ],
)
def test_capitalised_span_finds_the_subject(question: str, span: str | None) -> None:
    assert capitalised_span(question) == span


def test_answers_agree_ignores_case_punctuation_and_trailing_words() -> None:
    assert answers_agree("Tim Cook.", "tim cook")
    assert answers_agree("Paris", "Paris France")
    assert not answers_agree("Paris", "Parisian")
    assert not answers_agree("", "x")


def _grade(answer: str, gold: Sequence[str]) -> bool:
    return answer in gold


def test_calibration_meets_the_target_on_its_questions_with_the_most_coverage() -> None:
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for _ in range(40):  # confident and right
        signals.append(_signals(model=_view("A", 0.95), agreement=1.0, familiarity=-0.1))
        golds.append(("A",))
    for _ in range(10):  # hesitant and wrong
        signals.append(_signals(model=_view("B", 0.5), agreement=1.0, familiarity=-0.1))
        golds.append(("A",))
    for _ in range(10):  # unanswerable, confident but unfamiliar
        signals.append(_signals(model=_view("C", 0.99), agreement=1.0, familiarity=-9.0))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0, 0.0)}
    result = calibrate(signals, golds, _grade, target=0.0, grid=small)
    assert result.feasible and result.hallucination_rate == 0.0
    assert result.coverage == pytest.approx(40 / 50)
    assert 0.5 < result.thresholds.model <= 0.95 and result.thresholds.familiarity > -9.0


def test_calibration_bounds_the_unanswerable_questions_it_answers() -> None:
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for i in range(95):  # answerable and confident; ten of them as unfamiliar as the unanswerable ones
        signals.append(_signals(model=_view("A", 0.9), agreement=1.0, familiarity=-0.1 if i < 85 else -2.5))
        golds.append(("A",))
    for _ in range(5):  # unanswerable, just as confident, less familiar
        signals.append(_signals(model=_view("C", 0.9), agreement=1.0, familiarity=-2.5))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0,)}
    loose = calibrate(signals, golds, _grade, target=0.05, max_unanswerable=1.0, grid=small)
    assert loose.unanswerable_answered == 1.0 and loose.coverage == 1.0  # 5% hallucination is within target
    strict = calibrate(signals, golds, _grade, target=0.05, max_unanswerable=0.02, grid=small)
    assert strict.feasible and strict.unanswerable_answered == 0.0
    assert strict.coverage == pytest.approx(85 / 95) and strict.thresholds.familiarity > -2.5
    with pytest.raises(InvalidInputError):
        calibrate(signals, golds, _grade, max_unanswerable=-0.1)


def test_calibration_counts_a_refusal_phrase_as_an_abstention_with_the_graders_rule() -> None:
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for _ in range(20):  # confident and right
        signals.append(_signals(model=_view("A", 0.95), agreement=1.0, familiarity=-0.1))
        golds.append(("A",))
    for _ in range(5):  # unanswerable: the model says it does not know, just as confidently
        signals.append(_signals(model=_view("unknown", 0.95), agreement=1.0, familiarity=-0.1))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0,)}
    plain = calibrate(signals, golds, _grade, target=0.0, grid=small)  # "unknown" is an answer: a wrong one
    assert plain.coverage == 0.0  # to keep 0% wrong the model may answer nothing, the right answers included
    refusals = {"unknown"}
    ruled = calibrate(signals, golds, _grade, target=0.0, grid=small, abstains=lambda t: not t or t in refusals)
    assert ruled.feasible and ruled.coverage == 1.0 and ruled.unanswerable_answered == 0.0
    assert ruled.hallucination_rate == 0.0


def test_the_unanswerable_budget_is_a_count_or_a_confidence_bound() -> None:
    assert unanswerable_budget(157, 0.02, None) == 3 and unanswerable_budget(50, 0.02, None) == 1
    assert unanswerable_budget(157, 0.02, 0.95) == 0  # 1 of 157 bounds the rate only by 3.0% at 95%
    assert unanswerable_budget(74, 0.02, 0.95) == 0  # even 0 of 74 does not bound it by 2%: 0 answered
    k = unanswerable_budget(1000, 0.02, 0.95)
    # the largest count whose upper bound is within 2%: P(X <= k) <= 5% < P(X <= k + 1) at p = 2%
    assert binomial_cdf(k, 1000, 0.02) <= 0.05 < binomial_cdf(k + 1, 1000, 0.02) and 0 < k < 20
    assert binomial_cdf(0, 157, 0.02) == pytest.approx(0.98**157)
    assert binomial_cdf(3, 3, 0.5) == 1.0 and binomial_cdf(-1, 3, 0.5) == 0.0


def test_calibration_with_a_confidence_answers_no_unanswerable_question_on_a_small_set() -> None:
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for i in range(190):  # answerable; ten as unfamiliar as the one confident unanswerable question
        signals.append(_signals(model=_view("A", 0.9), agreement=1.0, familiarity=-0.1 if i < 180 else -2.5))
        golds.append(("A",))
    for i in range(60):  # unanswerable: one confident and less familiar, the rest hesitant
        signals.append(_signals(model=_view("C", 0.9 if i == 0 else 0.2), agreement=1.0, familiarity=-2.5))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0,)}
    point = calibrate(signals, golds, _grade, target=0.05, max_unanswerable=0.02, grid=small)
    assert point.unanswerable_budget == 1 and point.coverage == 1.0  # 1 of 60 is within 2%
    bound = calibrate(signals, golds, _grade, target=0.05, max_unanswerable=0.02, grid=small, confidence=0.95)
    assert bound.unanswerable_budget == 0 and bound.unanswerable_answered == 0.0
    assert bound.coverage == pytest.approx(180 / 190)
    with pytest.raises(InvalidInputError):
        calibrate(signals, golds, _grade, confidence=1.0)


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        calibrate([], [], _grade)
    with pytest.raises(InvalidInputError):
        calibrate([_signals()], [("A",)], _grade, target=1.5)


def test_policy_settings_round_trip_through_the_config_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "config.toml"
    policy = PolicySettings(model=0.42, familiarity=-3.0, require_support=False, calibrated_on="world dev, 9")
    settings = Settings(policy=policy)
    path.write_text(dump_settings(settings), encoding="utf-8")
    assert load_settings(path) == settings


def test_the_agreement_gate_vetoes_an_answer_its_paraphrases_disagree_with() -> None:
    t = PolicyThresholds(model=0.3, familiarity=-4.0, agreement=0.66)
    paras = tuple(_view(x, 0.9) for x in ("Tim Cook", "Tim Cook", "Jane Roe", "Bob"))
    split = _signals(model=_view("Tim Cook", 0.99), paraphrases=paras, agreement=0.5, familiarity=-0.2)
    d = decide(split, t)
    assert d.action == "abstain" and "other phrasings disagree (agreement 0.50 < 0.66)" in d.reason
    assert decide(split, PolicyThresholds(model=0.3, familiarity=-4.0)).action == "parametric"  # gate off: 0
    # no paraphrases asked (a relation without other templates): the gate is off for it
    alone = _signals(model=_view("Tim Cook", 0.99), familiarity=-0.2)
    assert decide(alone, t).action == "parametric"
    assert not t.may_answer_from_model(split) and t.may_answer_from_model(alone)


def test_calibration_fits_the_agreement_gate_where_confidence_cannot_separate() -> None:
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for _ in range(40):  # right, every paraphrase agrees, modest first-token probability: confidence 0.6
        signals.append(_signals(model=_view("A", 0.6), agreement=1.0, familiarity=-0.1))
        golds.append(("A",))
    for _ in range(10):  # unanswerable, sure of its first token but one paraphrase of six disagrees: 0.83
        signals.append(_signals(model=_view("C", 1.0), agreement=5 / 6, familiarity=-0.1))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0,)}
    result = calibrate(signals, golds, _grade, target=0.0, grid=small)
    assert result.feasible and result.coverage == 1.0 and result.unanswerable_answered == 0.0
    assert 5 / 6 < result.thresholds.agreement <= 1.0
    # without the gate no threshold on confidence or familiarity keeps the right answers only
    gateless = calibrate(signals, golds, _grade, target=0.0, grid={**small, "agreement": (0.0,)})
    assert gateless.coverage == 0.0
    # no question with paraphrases: the gate is not fitted (pinned to its pass-all value)
    bare = [_signals(model=s.model, familiarity=-0.1) for s in signals]
    assert calibrate(bare, golds, _grade, target=0.2, grid=small).thresholds.agreement == 0.0


def test_the_agreement_gate_and_paraphrase_count_round_trip_and_reach_the_agent(tmp_path: object) -> None:
    from pathlib import Path

    from agent.config import Home
    from agent.wiring import policy_thresholds

    path = Path(str(tmp_path)) / "config.toml"
    settings = Settings(policy=PolicySettings(model=0.48, agreement=0.66, paraphrases=6))
    path.write_text(dump_settings(settings), encoding="utf-8")
    loaded = load_settings(path)
    assert loaded == settings and loaded.model_policy().paraphrases == 6
    assert policy_thresholds(Home(root=Path(str(tmp_path)), settings=loaded)).agreement == 0.66
    with pytest.raises(ValueError):
        PolicySettings(paraphrases=13)


def test_calibration_finds_a_familiarity_threshold_between_whole_and_half_steps() -> None:
    # right answers about names scored -2.6 and unanswerable questions about names scored -2.9: a threshold
    # of -2.75 answers every right one and no unanswerable one; the old grid had -3.0 (answers both) or -2.0
    signals: list[Signals] = []
    golds: list[tuple[str, ...]] = []
    for i in range(100):
        signals.append(_signals(model=_view("A", 0.99), agreement=1.0, familiarity=-0.1 if i < 50 else -2.6))
        golds.append(("A",))
    for _ in range(20):
        signals.append(_signals(model=_view("C", 0.99), agreement=1.0, familiarity=-2.9))
        golds.append(())
    small = {"memory": (0.5,), "rag_prob": (0.3,), "kg_link": (0.5,), "pmi": (-100.0,), "agreement": (0.0,)}
    result = calibrate(signals, golds, _grade, target=0.02, max_unanswerable=0.02, confidence=0.95, grid=small)
    assert result.feasible and result.unanswerable_answered == 0.0
    assert result.thresholds.familiarity == pytest.approx(-2.75)
    assert result.coverage == pytest.approx(1.0)
