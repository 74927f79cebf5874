"""bench/rome_speed.py's verdict: a setting is 'not worse' only if every score is >= before's, in both modes."""

from __future__ import annotations

import copy
from typing import Any

from bench.rome_speed import not_worse, table


def _row(median: float, rel: float = 1.0, gen: float = 0.9, loc: float = 0.95) -> dict[str, Any]:
    scores = {"reliability": rel, "generalization": gen, "locality": loc, "portability": None}
    return {
        "median_s": median,
        "mean_s": median,
        "forwards": 30.0,
        "teacher_forced": dict(scores),
        "generation": dict(scores),
    }


def test_one_lower_greedy_score_is_worse_and_equal_is_not() -> None:
    before = _row(1.0)
    assert not_worse(copy.deepcopy(before), before)
    lower = copy.deepcopy(before)
    lower["generation"]["reliability"] = 0.98  # teacher-forced unchanged: greedy alone decides
    assert not not_worse(lower, before)
    better_tf_worse_loc = _row(0.4, rel=1.0, gen=0.95, loc=0.949)
    assert not not_worse(better_tf_worse_loc, before)
    assert not_worse(_row(0.4, gen=0.91), before)  # portability (None here) is not judged


def test_table_gives_the_ratio_and_the_verdict() -> None:
    before, fast = _row(2.0), _row(0.8, rel=0.99)
    rows = {"before": before, "after": _row(1.7), "fast": fast}
    for row in rows.values():
        row["median_vs_before"] = row["median_s"] / before["median_s"]
        row["not_worse"] = not_worse(row, before)
    text = table({"model": "gpt2-world", "n": 2, "settings": rows, "median_ratio": 0.85})
    fast_lines = [line for line in text.splitlines() if line.startswith("| fast |")]
    assert len(fast_lines) == 2 and all("| 0.40x |" in line and line.endswith("| no |") for line in fast_lines)
    assert "| after | teacher_forced | 1.700 | 1.700 | 30.0 | 0.85x |" in text


def test_before_is_the_adam_editor_whatever_the_default() -> None:
    """``before`` (the editor before issue 30) names its value fit: the default changed to capped L-BFGS."""
    from bench.rome_speed import BEFORE
    from tools.edit._rome import ROMEHyperParams

    hp = ROMEHyperParams(layers=(0,), **BEFORE)
    assert (hp.value_optimizer(), hp.early_stop_loss()) == ("adam", 0.01)
    assert not hp.cache_context_templates and not hp.v_skip_below
