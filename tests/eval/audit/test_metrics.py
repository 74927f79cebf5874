"""Metrics against hand-computed values, the bootstrap's determinism, and undefined figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.audit import METRIC_NAMES, Grade, Outcomes, Record, SetupAnswer, estimate_all, point_metrics, risk_coverage
from eval.audit._metrics import calibration_bins

C, W, N = Grade.CORRECT, Grade.INCORRECT, Grade.NOT_ATTEMPTED  # correct, wrong, not attempted


def _records(rows: list[tuple[Grade, float | None, bool]], claims: int = 0, supported: int = 0) -> list[Record]:
    return [
        Record(
            "s", f"q{i}", "known" if ok else "unanswerable", ok, SetupAnswer("x", confidence=conf), g, claims, supported
        )
        for i, (g, conf, ok) in enumerate(rows)
    ]


ROWS = [  # grade, confidence, answerable
    (C, 0.9, True),
    (C, 0.8, True),
    (W, 0.7, True),
    (C, 0.6, True),
    (N, 0.2, True),
    (W, 0.5, False),  # an unanswerable question answered
    (N, None, False),
]


def test_counts_rates_and_f_score() -> None:
    m = point_metrics(Outcomes.of(_records(ROWS)))
    assert m["accuracy"] == pytest.approx(3 / 7)
    assert m["hallucination_rate"] == pytest.approx(2 / 7)
    assert m["abstention_rate"] == pytest.approx(2 / 7)
    assert m["correct_given_attempted"] == pytest.approx(3 / 5)
    f = 2 * (3 / 7) * (3 / 5) / (3 / 7 + 3 / 5)
    assert m["f_score"] == pytest.approx(f)
    assert m["coverage"] == pytest.approx(4 / 5)  # attempted / answerable
    assert m["claim_support_ratio"] is None  # no long answers


def test_risk_coverage_and_aurc() -> None:
    o = Outcomes.of(_records(ROWS))
    # answerable and attempted, by confidence: 0.9 C, 0.8 C, 0.7 I, 0.6 C; N_answerable = 5
    assert np.allclose(risk_coverage(o), [(0.2, 0.0), (0.4, 0.0), (0.6, 1 / 3), (0.8, 1 / 4)])
    assert point_metrics(o)["aurc"] == pytest.approx(0.2 * (0 + 0 + 1 / 3 + 1 / 4))


def test_ties_in_confidence_form_one_threshold() -> None:
    o = Outcomes.of(_records([(C, 0.5, True), (W, 0.5, True), (C, 0.9, True)]))
    assert np.allclose(risk_coverage(o), [(1 / 3, 0.0), (1.0, 1 / 3)])


def test_ece_by_hand() -> None:
    o = Outcomes.of(_records(ROWS))
    # attempted with confidence: (0.9 C) (0.8 C) (0.7 I) (0.6 C) (0.5 I); bins 9, 8, 7, 6, 5 hold one each
    expected = (abs(1 - 0.9) + abs(1 - 0.8) + abs(0 - 0.7) + abs(1 - 0.6) + abs(0 - 0.5)) / 5
    assert point_metrics(o)["ece"] == pytest.approx(expected)
    bins = calibration_bins(o)
    assert len(bins) == 10 and sum(b.count for b in bins) == 5
    assert bins[9].accuracy == 1.0 and bins[7].accuracy == 0.0 and bins[0].confidence is None


def test_confidence_one_falls_in_the_last_bin() -> None:
    o = Outcomes.of(_records([(C, 1.0, True)]))
    assert calibration_bins(o)[9].count == 1 and point_metrics(o)["ece"] == pytest.approx(0.0)


def test_undefined_figures_are_none() -> None:
    m = point_metrics(Outcomes.of(_records([(N, None, False), (N, None, False)])))
    assert m["correct_given_attempted"] is None and m["f_score"] is None
    assert m["coverage"] is None and m["aurc"] is None and m["ece"] is None
    assert m["abstention_rate"] == 1.0
    empty = point_metrics(Outcomes.of([]))
    assert all(empty[name] is None for name in METRIC_NAMES)


def test_claim_support_ratio() -> None:
    records = _records([(C, 0.9, True)], claims=4, supported=3) + _records([(W, 0.9, True)], claims=2, supported=0)
    assert point_metrics(Outcomes.of(records))["claim_support_ratio"] == pytest.approx(3 / 6)


def test_bootstrap_is_seeded_and_brackets_the_value() -> None:
    rng = np.random.default_rng(1)
    grades = rng.choice([C, W, N], size=300, p=[0.5, 0.3, 0.2])
    records = _records([(g, float(rng.random()), True) for g in grades])
    o = Outcomes.of(records)
    first = estimate_all(o, resamples=300, seed=7)
    assert first == estimate_all(o, resamples=300, seed=7)
    assert first != estimate_all(o, resamples=300, seed=8)
    acc = first["accuracy"]
    assert acc.ci_low is not None and acc.ci_high is not None and acc.value is not None
    assert acc.ci_low < acc.value < acc.ci_high
    # the normal-approximation interval of a proportion, for scale: ~ +-1.96 sqrt(p(1-p)/n)
    half = 1.96 * math.sqrt(acc.value * (1 - acc.value) / 300)
    assert acc.ci_high - acc.ci_low == pytest.approx(2 * half, rel=0.25)
