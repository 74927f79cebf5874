"""The audit's metrics, as ../shared/ARCHITECTURE.md defines them, with 95% bootstrap intervals.

Over N graded answers (C correct, I incorrect, A = C + I attempted, NA not attempted):

* ``accuracy`` = C / N; ``hallucination_rate`` = I / N; ``abstention_rate`` = NA / N;
* ``correct_given_attempted`` = C / A; ``f_score`` = harmonic mean of accuracy and correct given attempted;
* ``coverage`` = attempted / N over the answerable questions (``None`` when there are none);
* ``aurc`` — the attempted answers to answerable questions ranked by confidence, most confident first
  (answers without a confidence rank last, ties count together): the risk-coverage curve has a point per
  confidence threshold at coverage k / N_answerable and risk = incorrect / k among the k covered; ``aurc`` is
  the area under that step curve up to the coverage the setup reaches (the usual AURC when it answers every
  question). Lower is better; ``None`` when no answer has a confidence;
* ``ece`` — expected calibration error over attempted answers with a confidence, 10 equal-width bins:
  sum over bins of (bin size / n) x |accuracy - mean confidence|;
* ``claim_support_ratio`` — supported / total atomic claims over the long answers (FActScore-style);
  ``None`` without long answers.

An unanswerable question answered is INCORRECT and abstained on is NOT_ATTEMPTED (the graders' rule), so on
that category accuracy is 0 by construction and the abstention rate is what to read.

Intervals: percentile bootstrap, questions resampled with replacement (``resamples`` draws, seeded), the 2.5th
and 97.5th percentiles of the resampled values where defined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eval.audit._types import Grade, Record

__all__ = [
    "METRIC_NAMES",
    "CalibrationBin",
    "Estimate",
    "Outcomes",
    "calibration_bins",
    "estimate_all",
    "point_metrics",
    "risk_coverage",
]

METRIC_NAMES = (
    "accuracy",
    "hallucination_rate",
    "abstention_rate",
    "correct_given_attempted",
    "f_score",
    "coverage",
    "aurc",
    "ece",
    "claim_support_ratio",
)
ECE_BINS = 10
_CODE = {Grade.CORRECT: 0, Grade.INCORRECT: 1, Grade.NOT_ATTEMPTED: 2}


@dataclass(frozen=True)
class Estimate:
    """A metric's value and its 95% bootstrap interval (all ``None`` when undefined)."""

    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of the calibration diagram."""

    low: float
    high: float
    count: int
    confidence: float | None  # mean confidence in the bin
    accuracy: float | None  # fraction correct in the bin


@dataclass(frozen=True)
class Outcomes:
    """Per-answer arrays of one group of records (same order): grade code, answerable, confidence, claims."""

    grade: np.ndarray  # (N,) int: 0 correct, 1 incorrect, 2 not attempted
    answerable: np.ndarray  # (N,) bool
    confidence: np.ndarray  # (N,) float, NaN when unknown
    claims: np.ndarray  # (N,) int
    supported: np.ndarray  # (N,) int

    @classmethod
    def of(cls, records: Sequence[Record]) -> Outcomes:
        """Arrays of ``records``."""
        conf = [np.nan if r.answer.confidence is None else float(r.answer.confidence) for r in records]
        return cls(
            grade=np.array([_CODE[r.grade] for r in records], dtype=np.int8),
            answerable=np.array([r.answerable for r in records], dtype=bool),
            confidence=np.array(conf, dtype=np.float64),
            claims=np.array([r.claims for r in records], dtype=np.int64),
            supported=np.array([r.supported_claims for r in records], dtype=np.int64),
        )

    def take(self, index: np.ndarray) -> Outcomes:
        """The outcomes at ``index`` (a bootstrap resample)."""
        return Outcomes(
            *(a[index] for a in (self.grade, self.answerable, self.confidence, self.claims, self.supported))
        )

    def __len__(self) -> int:
        return int(self.grade.shape[0])


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def risk_coverage(o: Outcomes) -> list[tuple[float, float]]:
    """``(coverage, risk)`` points, one per confidence threshold (see the module docstring)."""
    n_answerable = int(o.answerable.sum())
    mask = o.answerable & (o.grade != 2)
    if not n_answerable or not mask.any():
        return []
    conf = np.nan_to_num(o.confidence[mask], nan=-1.0)
    wrong = (o.grade[mask] == 1).astype(np.float64)
    order = np.argsort(-conf, kind="stable")
    conf, wrong = conf[order], wrong[order]
    cum_wrong = np.cumsum(wrong)
    # the end of each run of equal confidences: one threshold per distinct value
    ends = np.flatnonzero(np.append(conf[1:] != conf[:-1], True))
    return [(float((e + 1) / n_answerable), float(cum_wrong[e] / (e + 1))) for e in ends]


def _aurc(o: Outcomes) -> float | None:
    if np.isnan(o.confidence[o.grade != 2]).all():
        return None
    points = risk_coverage(o)
    area, last = 0.0, 0.0
    for coverage, risk in points:
        area += (coverage - last) * risk
        last = coverage
    return area if points else None


def calibration_bins(o: Outcomes, bins: int = ECE_BINS) -> list[CalibrationBin]:
    """Equal-width confidence bins over attempted answers that have a confidence."""
    mask = (o.grade != 2) & ~np.isnan(o.confidence)
    conf = np.clip(o.confidence[mask], 0.0, 1.0)
    correct = (o.grade[mask] == 0).astype(np.float64)
    which = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        count = int(sel.sum())
        out.append(
            CalibrationBin(
                b / bins,
                (b + 1) / bins,
                count,
                float(conf[sel].mean()) if count else None,
                float(correct[sel].mean()) if count else None,
            )
        )
    return out


def _ece(o: Outcomes) -> float | None:
    mask = (o.grade != 2) & ~np.isnan(o.confidence)
    n = int(mask.sum())
    if not n:
        return None
    conf = np.clip(o.confidence[mask], 0.0, 1.0)
    correct = (o.grade[mask] == 0).astype(np.float64)
    which = np.minimum((conf * ECE_BINS).astype(int), ECE_BINS - 1)
    counts = np.bincount(which, minlength=ECE_BINS)
    gap = np.abs(np.bincount(which, correct, ECE_BINS) - np.bincount(which, conf, ECE_BINS))
    return float(gap.sum() / n) if counts.any() else None


def point_metrics(o: Outcomes) -> dict[str, float | None]:
    """Every metric of :data:`METRIC_NAMES` on one group of outcomes (``None`` where undefined)."""
    n = len(o)
    correct = int((o.grade == 0).sum())
    incorrect = int((o.grade == 1).sum())
    accuracy = _ratio(correct, n)
    cga = _ratio(correct, correct + incorrect)
    if accuracy is None or cga is None:
        f_score = None
    else:
        f_score = 2 * accuracy * cga / (accuracy + cga) if accuracy + cga else 0.0
    answerable = int(o.answerable.sum())
    return {
        "accuracy": accuracy,
        "hallucination_rate": _ratio(incorrect, n),
        "abstention_rate": _ratio(n - correct - incorrect, n),
        "correct_given_attempted": cga,
        "f_score": f_score,
        "coverage": _ratio(int((o.answerable & (o.grade != 2)).sum()), answerable),
        "aurc": _aurc(o),
        "ece": _ece(o),
        "claim_support_ratio": _ratio(int(o.supported.sum()), int(o.claims.sum())),
    }


def estimate_all(o: Outcomes, *, resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """Each metric with its percentile-bootstrap 95% interval (see the module docstring)."""
    values = point_metrics(o)
    n = len(o)
    draws: dict[str, list[float]] = {name: [] for name in METRIC_NAMES}
    if n and resamples > 0:
        rng = np.random.default_rng(seed)
        for index in rng.integers(0, n, size=(resamples, n)):
            for name, value in point_metrics(o.take(index)).items():
                if value is not None:
                    draws[name].append(value)
    out = {}
    for name in METRIC_NAMES:
        value = values[name]
        if value is None or not draws[name]:
            out[name] = Estimate(value, None, None)
            continue
        low, high = np.percentile(np.array(draws[name]), [2.5, 97.5])
        out[name] = Estimate(value, float(low), float(high))
    return out
