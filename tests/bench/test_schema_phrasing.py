"""The schema-phrasing replay (bench/schema_phrasing.py) on hand-built rows, and its cache reader."""

from __future__ import annotations

import pickle
from pathlib import Path

from agent import ModelView, PolicyThresholds, Signals
from bench.coverage_gates import Row
from bench.schema_phrasing import census, fit, load_rows, replay

T = PolicyThresholds(model=0.9, familiarity=-2.0, agreement=0.99)


def _row(group: str, gold: tuple[str, ...], asked: str, templates: str, *, fam: float = -1.0) -> Row:
    paras = (ModelView("p", templates, 0.95, 0.5), ModelView("p", templates, 0.9, 0.5))
    agreement = sum(p.text == asked for p in paras) / 2
    model = ModelView("q", asked, 0.95, 0.5)
    s = Signals("The company Acme is run by", model=model, paraphrases=paras, agreement=agreement, familiarity=fam)
    return Row(group=group, gold=gold, signals=s)


ROWS = [
    _row("known/train", ("Jane Roe",), "Jane Roe", "Jane Roe"),  # answered by the model's own step
    _row("known/heldout", ("Jane Roe",), "Bob", "Jane Roe"),  # the question's words wrong, the templates right
    _row("known/heldout", ("Jane Roe",), "Bob", "Max"),  # both wrong
    _row("unanswerable/missing", (), "Bob", "Max", fam=-1.9),  # the templates overrule, about a less known name
]


def test_census_counts_what_the_templates_answer_where_the_policy_abstains() -> None:
    got = census(ROWS, T)
    assert got["known/heldout"]["unanswered_model_wrong"] == 2
    assert got["known/heldout"]["unanswered_model_wrong_paraphrases_right"] == 1
    assert (got["known/heldout"]["schema_right"], got["known/heldout"]["schema_wrong"]) == (1, 1)
    assert "schema_right" not in got["known/train"] and got["unanswerable/missing"]["schema_wrong"] == 1


def test_replay_and_fit_count_the_schema_steps_answers() -> None:
    off = replay(ROWS, T)
    assert (off["wrong"], off["coverage"], off["schema_step_right"]) == (0, 1 / 3, 0)
    loose = replay(
        ROWS, PolicyThresholds(model=0.9, familiarity=-2.0, agreement=0.99, schema_model=0.5, schema_familiarity=-5.0)
    )
    assert (loose["schema_step_right"], loose["schema_step_wrong"], loose["unanswerable_answered"]) == (1, 2, 1)
    fitted = fit(ROWS, T, target=0.5)  # the budget (no unanswerable question) needs a familiarity above -1.9
    assert fitted.schema_route and fitted.schema_familiarity > -1.9
    assert replay(ROWS, fitted)["unanswerable_answered"] == 0


def test_load_rows_reads_a_cache_written_by_coverage_gates(tmp_path: Path) -> None:
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps((ROWS, T)))
    rows, t = load_rows(path)
    assert t == T and [r.group for r in rows] == [r.group for r in ROWS]
