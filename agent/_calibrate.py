"""Fitting the policy's thresholds to a target hallucination rate on graded dev questions.

Signals are measured once per question; every threshold setting on a grid is then scored without touching
the model: each question becomes correct, incorrect or abstained under the setting. Among the settings whose
hallucination rate (incorrect / N) is at most the target, the one with the highest coverage of answerable
questions wins (ties: fewer incorrect, then the stricter setting). The target is met on the dev questions by
construction; the test questions, never seen here, measure whether it holds.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from agent._answer import Signals
from agent._policy import PolicyThresholds, decide
from tools.errors import InvalidInputError

__all__ = ["Calibration", "calibrate"]

logger = logging.getLogger(__name__)

GRID = {
    "kg_link": (0.3, 0.5, 0.7, 0.9),
    "memory": tuple(np.round(np.arange(0.3, 0.95, 0.1), 2)),
    "rag_prob": tuple(np.round(np.arange(0.0, 1.0, 0.2), 2)),
    "require_support": (True, False),
    # 1.01: the model never answers, the fallback when no confidence level keeps it under the target (a
    # served model without logprobs judged on agreement alone: measured 12.7% hallucination at 1.0)
    "model": (*np.round(np.arange(0.0, 1.0001, 0.04), 2), 1.01),
    # steps of 0.25 from -3 up: the known subjects' names and the unanswerable ones part there (issue 17:
    # -2.75 instead of -2.0 answers 0.045 more of dev, 0.036 more of world:test, at the same hallucination)
    "familiarity": (-100.0, -12.0, -10.0, -8.0, -6.0, -5.0, -4.0, *np.round(np.arange(-3.0, -0.49, 0.25), 2)),
    "pmi": (-100.0, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0),
    # share of the paraphrases agreeing (steps of 1/6 and 1/2 just below: 6 or 2 paraphrases asked)
    "agreement": (0.0, 0.33, 0.49, 0.66, 0.83, 0.99),
}
# the schema-phrasing step (``calibrate(schema_route=True)``): its confidence and familiarity thresholds
SCHEMA_GRID = {
    "schema_model": (*np.round(np.arange(0.5, 1.0001, 0.02), 2), 1.01),
    "schema_familiarity": GRID["familiarity"],
}


@dataclass(frozen=True)
class Calibration:
    """The chosen thresholds and what they give on the calibration questions."""

    thresholds: PolicyThresholds
    n: int
    hallucination_rate: float
    coverage: float
    accuracy: float
    target: float
    feasible: bool  # some setting met the target (else the one with the fewest hallucinations is returned)
    unanswerable_answered: float = 0.0  # share of the unanswerable questions the chosen setting answers
    max_unanswerable: float = 0.02
    unanswerable_budget: int = 0  # how many unanswerable calibration questions a feasible setting may answer


def _outcomes(
    signals: Sequence[Signals],
    golds: Sequence[Sequence[str]],
    t: PolicyThresholds,
    grade: Callable[[str, Sequence[str]], bool],
    abstains: Callable[[str], bool],
) -> np.ndarray:
    """Per question: 1 correct, -1 incorrect, 0 abstained (the ``abstain`` action, or a text ``abstains``)."""
    out = np.zeros(len(signals), dtype=np.int8)
    for i, (s, gold) in enumerate(zip(signals, golds, strict=True)):
        d = decide(s, t)
        if d.action != "abstain" and not abstains(d.text):
            out[i] = 1 if gold and grade(d.text, gold) else -1
    return out


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no overflow for thousands of trials)."""
    if k < 0:
        return 0.0
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq for i in range(k + 1)
    ]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


def unanswerable_budget(n: int, rate: float, confidence: float | None) -> int:
    """How many of ``n`` unanswerable calibration questions a setting may answer.

    Without ``confidence``: ``floor(rate * n)`` (the observed rate at most ``rate``). With it: the largest
    ``k`` whose one-sided Clopper-Pearson upper bound at ``confidence`` is at most ``rate`` (``k`` answered
    of ``n`` is then evidence, at that level, that the true rate is within ``rate``), i.e. the largest ``k``
    with ``P(Binomial(n, rate) <= k) <= 1 - confidence``; 0 when even none answered is not (too few
    questions: 0 of 157 bounds the rate by 1.9% at 95%, 0 of 74 only by 4%).

    Example:
        >>> unanswerable_budget(157, 0.02, None), unanswerable_budget(157, 0.02, 0.95)
        (3, 0)
    """
    if confidence is None:
        return math.floor(rate * n + 1e-9)
    k = -1
    while k + 1 <= n and binomial_cdf(k + 1, n, rate) <= 1.0 - confidence:
        k += 1
    return max(k, 0)


def _empty(text: str) -> bool:
    """The default abstention rule: no answer text."""
    return not text.strip()


def _with_model(upstream: PolicyThresholds, combo: np.ndarray) -> PolicyThresholds:
    """``upstream`` with the model's four thresholds from one row of the grid, ``(model, familiarity, pmi,
    agreement)``."""
    model, familiarity, pmi, agreement = map(float, combo)
    return replace(upstream, model=model, familiarity=familiarity, pmi=pmi, agreement=agreement)


def _unused_by_backend(signals: Sequence[Signals]) -> dict[str, tuple[float, ...]]:
    """Grid overrides pinning thresholds on signals that no question has to their pass-all value."""
    missing = set.intersection(*(set(s.unavailable) for s in signals)) if signals else set()
    pinned: dict[str, tuple[float, ...]] = {}
    if "familiarity" in missing:
        pinned["familiarity"] = (-100.0,)
    if "pmi" in missing:
        pinned["pmi"] = (-100.0,)
    if "first_token_prob" in missing:  # RAG answers are judged on memory score and support alone
        pinned["rag_prob"] = (0.0,)
    if all(s.agreement is None for s in signals):  # no paraphrases asked (or no templates): no gate to fit
        pinned["agreement"] = (0.0,)
    return pinned


def _fit_schema_route(
    signals: Sequence[Signals],
    golds: Sequence[Sequence[str]],
    t: PolicyThresholds,
    grade: Callable[[str, Sequence[str]], bool],
    abstains: Callable[[str], bool],
    *,
    target: float,
    budget: int,
) -> PolicyThresholds:
    """``t`` with step 4's thresholds (``schema_model``, ``schema_familiarity``) fitted on the questions ``t``
    leaves open: the setting covering the most answerable questions with at most ``target`` hallucination
    overall and ``budget`` unanswerable questions answered (ties: fewer wrong, then stricter); ``t``
    unchanged (step 4 off) when none covers more than ``t`` alone.

    Step 4 acts only where steps 1-3 abstain, so each question's outcome with it fully open (``schema_model``
    0, no familiarity floor) is its outcome whenever a setting lets its schema answer through."""
    base = _outcomes(signals, golds, t, grade, abstains)
    opened = _outcomes(signals, golds, replace(t, schema_model=0.0, schema_familiarity=-1e9), grade, abstains)
    o = np.flatnonzero((base == 0) & (opened != 0))  # the questions step 4 may change
    answerable = np.array([bool(g) for g in golds])
    picked = [signals[int(i)] for i in o]
    conf = np.array([s.schema_confidence for s in picked])
    fam = np.array([0.0 if s.familiarity is None else s.familiarity for s in picked])
    combos = np.array(list(itertools.product(SCHEMA_GRID["schema_model"], SCHEMA_GRID["schema_familiarity"])))
    takes = (conf[:, None] >= combos[None, :, 0]) & (fam[:, None] >= combos[None, :, 1])  # (open, S)
    rows = np.stack([opened[o] == -1, ~answerable[o], answerable[o]]).astype(np.float32)
    counts = np.rint(rows @ takes.astype(np.float32)).astype(np.int64)  # (3, S)
    wrong = int((base == -1).sum()) + counts[0]
    unanswered = int(((base != 0) & ~answerable).sum()) + counts[1]
    feasible = (wrong / len(signals) <= target) & (unanswered <= budget) & (counts[2] > 0)
    if not feasible.any():
        return t
    order = np.lexsort((combos[:, 1], combos[:, 0], -wrong, counts[2]))  # last key first; best is last
    j = int(order[feasible[order]][-1])
    logger.info("schema phrasings: %d more answered, %d more wrong", counts[2][j], counts[0][j])
    return replace(t, schema_model=float(combos[j, 0]), schema_familiarity=float(combos[j, 1]))


def calibrate(
    signals: Sequence[Signals],
    golds: Sequence[Sequence[str]],
    grade: Callable[[str, Sequence[str]], bool],
    *,
    target: float = 0.02,
    max_unanswerable: float = 0.02,
    grid: Mapping[str, Sequence[float | bool]] | None = None,
    abstains: Callable[[str], bool] = _empty,
    confidence: float | None = None,
    schema_route: bool = False,
) -> Calibration:
    """Fit thresholds on graded questions (``golds[i]`` empty = unanswerable: any answer is incorrect).

    The grid is searched coordinate-wise per source, because each source's outcome depends only on its own
    thresholds and on whether an earlier source answered: KG first, then retrieval, then the model.

    A setting is feasible when its hallucination rate (incorrect / N) is at most ``target`` *and* it answers
    at most ``max_unanswerable`` of the unanswerable questions (an overall target alone lets a policy answer
    many unanswerable questions when they are a small share of N: 7-9% were answered at a 2% target). With
    ``confidence`` the second condition is stricter: the setting may answer only as many unanswerable
    questions as keep the one-sided upper bound of their rate at that confidence within ``max_unanswerable``
    (:func:`unanswerable_budget`), so that the bound holds beyond the calibration questions (a 2% rate
    met on 800 dev questions, 1 of 78 unanswerable answered, gave 7 of 100 on test).

    Only the signals the backend gave are fitted: a threshold on a signal no question has (a served model
    without logprobs or prompt log-probabilities, see ``Signals.unavailable``) stays at its pass-all value
    instead of taking an arbitrary grid value that would not mean anything.

    ``grid`` overrides the candidate values of some thresholds (default :data:`GRID`). ``abstains`` is the
    grader's abstention rule: an answer whose text it calls an abstention ("I don't know", "unknown") counts
    as abstained, as the audit and agent-bench grade it (pass ``eval.audit.is_abstention``; the default
    counts only empty text, so that ``agent`` needs nothing from ``eval``).

    With ``schema_route`` the policy's step 4 (the answer in the schema's phrasings where they overrule the
    question's, :attr:`Signals.schema_view`) is fitted after the rest (:func:`_fit_schema_route`), on the
    questions the chosen setting leaves open, under the same target and budget; it stays off (1.01) unless
    some setting of it covers more.

    Raises:
        InvalidInputError: no questions, mismatched lengths, a rate outside [0, 1] or a confidence outside
            (0, 1).
    """
    g = {**GRID, **_unused_by_backend(signals), **(grid or {})}
    if not signals or len(signals) != len(golds):
        raise InvalidInputError("calibration needs one gold answer list per signal, and at least one question")
    if not 0.0 <= target <= 1.0:
        raise InvalidInputError(f"target hallucination rate must be in [0, 1], got {target}")
    if not 0.0 <= max_unanswerable <= 1.0:
        raise InvalidInputError(f"max_unanswerable must be a rate in [0, 1], got {max_unanswerable}")
    if confidence is not None and not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence}")
    n = len(signals)
    answerable = np.array([bool(g) for g in golds])
    budget = unanswerable_budget(int((~answerable).sum()), max_unanswerable, confidence)
    best: tuple[tuple[float, ...], PolicyThresholds] | None = None
    fallback: tuple[tuple[float, ...], PolicyThresholds] | None = None
    # the model threshold varies fastest: precompute per-question decisions for every other setting
    conf = np.array([s.model_confidence if s.model and s.model.text else -1.0 for s in signals])
    fam = np.array([0.0 if s.familiarity is None else s.familiarity for s in signals])
    pmi = np.array([100.0 if s.pmi is None else s.pmi for s in signals])
    agree = np.array([1.0 if s.agreement is None else s.agreement for s in signals])  # None: the gate is off
    model_only: dict[tuple[float, bool], np.ndarray] = {}
    combos = np.array(
        list(itertools.product(g["model"], g["familiarity"], g["pmi"], g["agreement"])), dtype=float
    )  # (S, 4)
    ms, fs, ps, ags = combos[:, 0], combos[:, 1], combos[:, 2], combos[:, 3]
    others = itertools.product(g["kg_link"], g["memory"], g["rag_prob"], g["require_support"])
    for kg_link, memory, rag_prob, support in others:
        upstream = PolicyThresholds(
            kg_link=kg_link,
            memory=memory,
            rag_prob=rag_prob,
            require_support=support,
            model=1.01,
            familiarity=0.0,
            pmi=0.0,
        )  # the model never answers
        pre = _outcomes(signals, golds, upstream, grade, abstains)
        open_ = pre == 0
        if (memory, support) not in model_only:  # outcome if the model answered every question it can
            model_only[memory, support] = _outcomes(
                signals,
                golds,
                PolicyThresholds(kg_link=1.01, memory=memory, rag_prob=1.01, require_support=support, model=0.0),
                grade,
                abstains,
            )
        para = model_only[memory, support]
        # every (model, familiarity, pmi, agreement) setting at once: takes[i, j] = the model answers open
        # question i under j (only the open questions: the others' outcome is settled upstream)
        o = np.flatnonzero(open_)
        takes = (conf[o, None] >= ms[None, :]) & (fam[o, None] >= fs[None, :])
        takes &= (pmi[o, None] >= ps[None, :]) & (agree[o, None] >= ags[None, :])
        # wrong, unanswerable answered and answerable covered per setting in one product (float32 counts
        # below 2**24 are exact; a float matmul is many times faster than an integer one)
        rows = np.stack([para[o] == -1, (para[o] != 0) & ~answerable[o], (para[o] != 0) & answerable[o]])
        counts = np.rint(rows.astype(np.float32) @ takes.astype(np.float32)).astype(np.int64)  # (3, S)
        wrong = int((pre == -1).sum()) + counts[0]  # (S,)
        answered_unanswerable = int(((pre != 0) & ~answerable).sum()) + counts[1]
        covered = ((pre != 0) & answerable).sum() + counts[2]
        cov = covered / max(1, int(answerable.sum()))
        # the best setting of this group: most coverage, then fewest wrong, then the strictest thresholds
        order = np.lexsort((ags, ps, fs, ms, -wrong, cov))  # last key sorts first; ascending: best is last
        feasible = (wrong[order] / n <= target) & (answered_unanswerable[order] <= budget)
        ok = order[feasible]
        if ok.size:
            j = int(ok[-1])
            key = (
                float(cov[j]),
                -int(wrong[j]),
                kg_link,
                memory,
                rag_prob,
                float(ms[j]),
                float(fs[j]),
                float(ps[j]),
                float(ags[j]),
            )
            if best is None or key > best[0]:
                best = (key, _with_model(upstream, combos[j]))
        j = int(np.lexsort((cov, -wrong))[-1])  # fewest wrong, then most coverage
        fkey = (-int(wrong[j]), float(cov[j]))
        if fallback is None or fkey > fallback[0]:
            fallback = (fkey, _with_model(upstream, combos[j]))
    chosen = best or fallback
    assert chosen is not None
    t = chosen[1]
    if schema_route and best is not None:
        t = _fit_schema_route(signals, golds, t, grade, abstains, target=target, budget=budget)
    res = _outcomes(signals, golds, t, grade, abstains)
    if best is None:
        logger.warning("no threshold setting reaches %.3f hallucination on these questions", target)
    covered = float((res[answerable] != 0).mean()) if answerable.any() else 0.0
    return Calibration(
        thresholds=t,
        n=n,
        hallucination_rate=float((res == -1).mean()),
        coverage=covered,
        accuracy=float((res == 1).mean()),
        target=target,
        feasible=best is not None,
        unanswerable_answered=float((res[~answerable] != 0).mean()) if (~answerable).any() else 0.0,
        max_unanswerable=max_unanswerable,
        unanswerable_budget=budget,
    )
