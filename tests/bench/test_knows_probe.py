"""The hidden-state probe measurement (bench/knows_probe.py): its statistics, and that it fits on no test item."""

from __future__ import annotations

import numpy as np

from bench.knows_probe import auc, fit_logistic, kept_at_budget, world_items
from eval.world import DATA_DIR, load_world


def test_auc_counts_ties_half_and_orders() -> None:
    assert auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auc(np.array([1.0]), np.array([2.0])) == 0.0
    assert auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    assert auc(np.array([2.0, 0.0]), np.array([1.0])) == 0.5


def test_fit_logistic_separates_a_linear_rule() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    y = (x[:, 0] - x[:, 2] > 0).astype(float)
    w, b = fit_logistic(x, y, l2=1.0)
    acc = float((((x @ w + b) > 0) == (y > 0)).mean())
    assert acc > 0.97
    assert w[0] > 0 > w[2] and abs(w[1]) < abs(w[0]) / 5


def test_kept_at_budget_answers_at_most_the_rate() -> None:
    score = np.array([0.9, 0.8, 0.7, 0.95, 0.1, 0.2] + [0.0] * 98)
    good = np.zeros(104, dtype=bool)
    good[:3] = True
    unans = np.zeros(104, dtype=bool)
    unans[3:] = True  # 101 unanswerable: 2% allows 2 answered (0.95 and 0.2); the threshold is 0.1
    assert kept_at_budget(score, good, unans, 0.02) == 1.0
    assert kept_at_budget(score, good, unans, 0.0) == 0.0  # nothing above the best unanswerable 0.95


def test_fit_items_are_never_test_items_nor_the_worlds_unanswerable_ones() -> None:
    world = load_world(DATA_DIR)
    fit, dev = world_items(world, 17)
    assert fit and dev
    dev_facts = {q.fact_id for q in world.questions if q.split == "dev"}
    test_facts = {q.fact_id for q in world.questions if q.split == "test"}
    fact_of = {(f.subject, f.relation, f.object): f.id for f in world.facts}
    world_pairs = {(f.subject, f.relation) for f in world.facts}
    world_pairs |= {(q.subject, q.relation) for q in world.questions if q.kind == "unanswerable"}
    test_texts = {q.text for q in world.questions if q.split == "test"}
    kinds = {it.kind for it in fit}
    assert kinds == {"known", "unknown", "missing", "invented"}
    for it in fit:
        assert it.text not in test_texts
        if it.kind in ("known", "unknown"):  # asked about a dev fact, never a test one
            fact = fact_of[(it.subject, it.relation, it.answers[0])]
            assert fact in dev_facts and fact not in test_facts
        else:  # built as the world builds its unanswerable questions, but none of the world's own
            assert not it.answers and (it.subject, it.relation) not in world_pairs
    assert {q.text for q in world.questions if q.split == "dev" and q.kind != "edit"} == {it.text for it in dev}
