"""The coverage breakdown (bench/coverage_gates.py): gate attribution and lifts on hand-built signals."""

from __future__ import annotations

from agent import ModelView, PolicyThresholds, Signals
from bench.coverage_gates import Row, breakdown, failing_gates, why_unanswered, without_gate

T = PolicyThresholds(model=0.9, familiarity=-2.0, pmi=0.5, agreement=0.99)


def _signals(answer: str | None, prob: float, *, fam: float = 0.0, pmi: float = 1.0, paras: int = 2) -> Signals:
    model = None if answer is None else ModelView("prompt", answer, prob, prob)
    views = tuple(ModelView("p", "Tim Cook" if i < paras else "Bob", 0.9, 0.9) for i in range(2))
    agreement = None if answer is None else sum(v.text == answer for v in views) / 2
    return Signals("Who runs Acme?", model=model, paraphrases=views, agreement=agreement, familiarity=fam, pmi=pmi)


def test_failing_gates_names_every_gate_below_its_threshold() -> None:
    assert failing_gates(_signals("Tim Cook", 0.95), T) == ()
    assert failing_gates(_signals("Tim Cook", 0.5), T) == ("confidence",)
    assert failing_gates(_signals("Tim Cook", 0.95, fam=-3.0, pmi=0.1), T) == ("familiarity", "pmi")
    # one paraphrase disagrees: agreement 0.5 fails its gate and halves the confidence
    assert failing_gates(_signals("Tim Cook", 0.95, paras=1), T) == ("confidence", "agreement")


def test_without_gate_switches_off_that_gate_only() -> None:
    s = _signals("Tim Cook", 0.95, fam=-3.0)
    assert failing_gates(s, without_gate(T, "familiarity")) == ()
    assert without_gate(T, "familiarity").model == T.model
    assert failing_gates(_signals("Tim Cook", 0.5), without_gate(T, "pmi")) == ("confidence",)


def test_why_unanswered_tells_a_vetoed_right_answer_from_a_wrong_one() -> None:
    assert why_unanswered(_signals("Tim Cook", 0.95, fam=-3.0), ("Tim Cook",), T) == "model right: familiarity"
    assert why_unanswered(_signals("Tim Cook", 0.95, fam=-3.0), ("Jane Roe",), T) == "model wrong"
    assert why_unanswered(_signals(None, 0.0), ("Jane Roe",), T) == "no model answer"


def test_breakdown_counts_outcomes_and_what_lifting_each_gate_lets_through() -> None:
    rows = [
        Row(group="known/train", gold=("Tim Cook",), signals=_signals("Tim Cook", 0.95)),  # answered right
        Row(group="known/train", gold=("Tim Cook",), signals=_signals("Tim Cook", 0.95, fam=-3.0)),  # vetoed
        Row(group="known/heldout", gold=("Jane Roe",), signals=_signals("Tim Cook", 0.95, fam=-3.0)),  # rightly
        Row(group="unanswerable/missing", gold=(), signals=_signals("Tim Cook", 0.95, fam=-2.5)),
    ]
    out = breakdown(rows, T)
    train = out["known/train"]
    assert (train["right"], train["wrong"], train["abstained"]) == (1, 0, 1)
    assert train["right_vetoed_by_one_gate_only"] == {"familiarity": 1}
    assert out["all"]["lift_one_gate"]["familiarity"] == {"right": 1, "wrong_answerable": 1, "unanswerable_answered": 1}
    assert out["all"]["lift_one_gate"]["pmi"] == {"right": 0, "wrong_answerable": 0, "unanswerable_answered": 0}
    assert out["known/heldout"]["why_unanswered"] == {"model wrong": 1}
