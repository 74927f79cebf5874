"""The reader's acceptance decision: a small calibrated model over the reading's evidence, fitted on dev.

A reading is applied only when the evidence for it is strong enough. The evidence (:data:`FEATURES`, one
number each, built by :func:`evidence_vector`) is what the reader and the knowledge graph know about it:

- ``log_p``: log of the relation's share among the readings in the chosen direction (the classifier);
- ``log_margin``: log of the best reading's score over the runner-up's (capped), a relation close behind
  makes a reading less sure;
- ``log_none``: log of the "no relation stated" share;
- ``log_span_s`` / ``log_span_o``: log of the tagger's span probability for an unknown subject / object
  name (0 for a name the linker knows: its boundaries are the KG label's);
- ``linked_s`` / ``linked_o``: the name is one the entity linker knows (its boundaries are the KG label's);
- ``type_s`` / ``type_o``: the schema's types as the graph shows them: +1 when the known entity already is
  the subject (object) of facts of this relation (a functional relation's subject already having a value,
  an object known to be of the relation's range), -1 when it has facts of other relations only, 0 unknown;
- ``swapped``: subject and object read against the tagger (only the types could justify it);
- ``pair``: the tagger gave both names one role (the fallback reading).

:class:`Acceptance` is a logistic regression over them, ``P(read right | evidence)``, and a threshold on
that probability. :func:`fit_acceptance` fits both on the trainer's *calibration* split (phrasings and
names held out from training the heads; never the benchmark's edits): weights by L2-regularised Newton
steps, the threshold on out-of-fold probabilities (two folds) as the lowest one at which at most
``max_wrong`` of the calibration sentences are accepted with a wrong triple (so the threshold is not
fitted on the very sentences the weights were fitted on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.errors import ConfigError, InvalidInputError

__all__ = ["FEATURES", "Acceptance", "evidence_vector", "fit_acceptance", "fit_relation_thresholds", "fit_threshold"]

FEATURES = (
    "log_p", "log_margin", "log_none", "log_span_s", "log_span_o", "linked_s", "linked_o", "type_s", "type_o",
    "swapped", "pair",
)  # fmt: skip
_FLOOR = 1e-4  # probabilities below this carry no more information (and keep the logs finite)
_MARGIN_CAP = 8.0  # log-ratio to the runner-up past which a reading is no surer


def evidence_vector(
    *,
    p: float,
    margin: float,
    none: float,
    span_s: float,
    span_o: float,
    linked_s: bool,
    linked_o: bool,
    type_s: int,
    type_o: int,
    swapped: bool,
    pair: bool,
) -> tuple[float, ...]:
    """One reading's evidence in :data:`FEATURES` order (probabilities in [0, 1]; ``margin`` a ratio >= 1)."""
    return (
        math.log(max(p, _FLOOR)),
        min(math.log(max(margin, 1.0)), _MARGIN_CAP),
        math.log(max(none, _FLOOR)),
        0.0 if linked_s else math.log(max(span_s, _FLOOR)),  # a known name's boundaries are its KG label's
        0.0 if linked_o else math.log(max(span_o, _FLOOR)),
        float(linked_s),
        float(linked_o),
        float(type_s),
        float(type_o),
        float(swapped),
        float(pair),
    )


@dataclass(frozen=True, kw_only=True)
class Acceptance:
    """``P(read right | evidence) = sigmoid(bias + weights . evidence)``; accepted at ``>= threshold``.

    Attributes:
        weights: one per :data:`FEATURES` entry.
        bias: the intercept.
        threshold: the probability a reading must reach to be applied (fitted at ``max_wrong``).
        max_wrong: the calibration share of sentences that may be accepted wrong at ``threshold``.
        calibration_correct: share of calibration sentences read right and accepted (out-of-fold; the
            trainer reports it as a share of the sentences stating a relation, :func:`fit_acceptance` of all).
        calibration_wrong: share of all calibration sentences accepted with a wrong triple (out-of-fold).
    """

    weights: tuple[float, ...]
    bias: float
    threshold: float
    max_wrong: float = 0.01
    calibration_correct: float = 0.0
    calibration_wrong: float = 0.0

    def __post_init__(self) -> None:
        if len(self.weights) != len(FEATURES):
            raise ConfigError(f"an acceptance model needs {len(FEATURES)} weights, got {len(self.weights)}")

    def probability(self, evidence: Sequence[float]) -> float:
        """``P(read right | evidence)`` in [0, 1]."""
        z = self.bias + float(np.dot(self.weights, evidence))
        return float(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, weights keyed by feature name (the reader's ``reader.json`` holds it)."""
        return {
            "weights": {name: round(w, 6) for name, w in zip(FEATURES, self.weights, strict=True)},
            "bias": round(self.bias, 6),
            "threshold": self.threshold,
            "max_wrong": self.max_wrong,
            "calibration_correct": self.calibration_correct,
            "calibration_wrong": self.calibration_wrong,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Acceptance:
        """The inverse of :meth:`as_dict`.

        Raises:
            ConfigError: a feature's weight is missing, or a field is malformed.
        """
        try:
            weights = tuple(float(data["weights"][name]) for name in FEATURES)
            return cls(
                weights=weights, bias=float(data["bias"]), threshold=float(data["threshold"]),
                max_wrong=float(data.get("max_wrong", 0.01)),
                calibration_correct=float(data.get("calibration_correct", 0.0)),
                calibration_wrong=float(data.get("calibration_wrong", 0.0)),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed acceptance model in the reader's JSON: {exc}") from exc


def fit_threshold(outcomes: Sequence[tuple[float | None, bool]], max_wrong: float) -> tuple[float, float, float]:
    """The lowest threshold whose accepted-and-wrong share of all sentences is at most ``max_wrong``.

    Args:
        outcomes: per sentence ``(confidence or None when nothing was read, read correctly)``.
        max_wrong: the largest share of sentences that may be accepted with a wrong triple.

    Returns:
        ``(threshold, correct share, wrong share)`` at that threshold (shares of all sentences).

    Raises:
        InvalidInputError: no outcomes.
    """
    n = len(outcomes)
    if n == 0:
        raise InvalidInputError("fitting a threshold needs at least one calibration sentence")
    candidates = sorted({c for c, _ in outcomes if c is not None} | {1.01})
    for t in candidates:
        wrong = sum(1 for c, ok in outcomes if c is not None and c >= t and not ok) / n
        if wrong <= max_wrong:
            right = sum(1 for c, ok in outcomes if c is not None and c >= t and ok) / n
            return float(t), right, wrong
    return 1.01, 0.0, 0.0


def fit_relation_thresholds(
    outcomes: Sequence[tuple[str | None, float | None, bool]], max_wrong: float
) -> tuple[dict[str, float], float, float]:
    """Per relation read, the lowest threshold at which at most its share of the wrong budget is accepted wrong.

    The budget is ``max_wrong`` of all sentences; a relation's share is its share of the readings, so the
    shares add up to the budget and all relations together accept at most ``max_wrong`` of these sentences
    wrongly. A relation whose readings are rarely wrong so gets a lower threshold than the one shared
    threshold of :func:`fit_threshold`, one whose confident readings are often wrong a higher one.

    Args:
        outcomes: per sentence ``(relation read or None, its confidence or None, read correctly)``.
        max_wrong: the largest share of sentences that may be accepted with a wrong triple.

    Returns:
        ``(threshold per relation, correct share, wrong share)`` (shares of all sentences).

    Raises:
        InvalidInputError: no outcomes.
    """
    n = len(outcomes)
    if n == 0:
        raise InvalidInputError("fitting thresholds needs at least one calibration sentence")
    by_relation: dict[str, list[tuple[float, bool]]] = {}
    for relation, c, ok in outcomes:
        if relation is not None and c is not None:
            by_relation.setdefault(relation, []).append((c, ok))
    readings = sum(len(v) for v in by_relation.values())
    thresholds: dict[str, float] = {}
    right = wrong = 0
    for relation, items in sorted(by_relation.items()):
        budget = max_wrong * n * len(items) / readings
        for t in sorted({c for c, _ in items} | {1.01}):
            bad = sum(1 for c, ok in items if c >= t and not ok)
            if bad <= budget:
                thresholds[relation] = float(t)
                right += sum(1 for c, ok in items if c >= t and ok)
                wrong += bad
                break
    return thresholds, right / n, wrong / n


def _logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 50) -> np.ndarray:
    """Weights ``(F+1,)`` (intercept last) of an L2-regularised logistic regression, by Newton's method."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def fit_acceptance(
    rows: Sequence[tuple[Sequence[float] | None, bool]], max_wrong: float, *, l2: float = 0.1, seed: int = 0
) -> Acceptance:
    """Fit the acceptance model on calibration readings (see the module docstring).

    Args:
        rows: per calibration sentence ``(evidence of its reading, or None when nothing was read or the
            reading was ambiguous, read correctly)``; sentences stating no relation count, never as right.
        max_wrong: the largest share of sentences that may be accepted with a wrong triple.
        l2: the weights' L2 penalty (the intercept is free; 0.1 was chosen on the calibration split among
            0.1, 1 and 10, out of fold).
        seed: seeds the two folds.

    Raises:
        InvalidInputError: no sentence was read, or all readings are right or all wrong.
    """
    read = [(np.asarray(ev, dtype=float), ok) for ev, ok in rows if ev is not None]
    if not read or len({ok for _, ok in read}) < 2:
        raise InvalidInputError("fitting the acceptance model needs readings both right and wrong")
    x = np.stack([ev for ev, _ in read])
    y = np.array([float(ok) for _, ok in read])
    fold = np.random.default_rng(seed).permutation(len(read)) % 2
    oof = np.zeros(len(read))
    for k in (0, 1):
        w = _logistic(x[fold != k], y[fold != k], l2)
        oof[fold == k] = 1.0 / (1.0 + np.exp(-np.clip(x[fold == k] @ w[:-1] + w[-1], -50, 50)))
    outcomes: list[tuple[float | None, bool]] = [(float(p), bool(ok)) for p, ok in zip(oof, y, strict=True)]
    outcomes += [(None, ok) for ev, ok in rows if ev is None]
    threshold, right, wrong = fit_threshold(outcomes, max_wrong)
    w = _logistic(x, y, l2)
    return Acceptance(
        weights=tuple(float(v) for v in w[:-1]), bias=float(w[-1]), threshold=round(threshold, 6),
        max_wrong=max_wrong, calibration_correct=round(right, 4), calibration_wrong=round(wrong, 4),
    )  # fmt: skip
