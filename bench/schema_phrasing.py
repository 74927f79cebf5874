# ruff: noqa: T201
"""What the schema's own phrasings answer where the user's words do not (issue 17), replayed on measured signals.

On held-out question templates the model's own answer is wrong for about a third of the KNOWN world:test
questions, while its answers to the relation's training phrasings (the paraphrases the agent already asks
for the agreement gate, cloze templates first) are mostly right. This reads a ``bench.coverage_gates``
cache (every question's full signals, two paraphrases each as shipped) and reports:

* ``census``: per question group, the questions the policy leaves unanswered, split by whether the
  model's answer to the question's words is right, and how many of them the paraphrases all answer right;
  and how many questions have a schema answer at all (:attr:`agent.Signals.schema_view`: at least two
  paraphrases agreeing with each other and not with the question's answer), by its grade;
* ``replay``: :func:`agent.decide` on every question with the schema-phrasing step off and on (its two
  thresholds given, or fitted on this cache as ``factagent calibrate --schema-phrasing`` fits them:
  ``--fit``, for a dev cache only), the totals as the audit counts them and the step's own answers.

Nothing asks the model: the figures are the policy's on the cached signals (the audit's to the question
for the shipped thresholds, README "Where the coverage goes").

Run (a cache from ``python -m bench.coverage_gates --home H --split dev --cache dev.pkl``)::

    PYTHONPATH=. python -m bench.schema_phrasing --cache dev.pkl --fit --calibration-set
    PYTHONPATH=. python -m bench.schema_phrasing --cache test.pkl --schema-model 0.5 --schema-familiarity -1.75

(``--set familiarity=-2.75 --set pmi=0.25``: other thresholds than the cache's, for both replays.)

Findings (2026-12-06, README "Asking the model in the phrasing it knows"): on world:test, of the KNOWN
held-out questions left unanswered with the model's own answer wrong, the two schema phrasings both answer
right about five in six; but where the schema step would act (the question's answer disagrees, so steps
1-3 abstain) its answers are right only 79-90% of the time against 96% for the model's own step, so it
buys coverage at a higher hallucination rate.
"""

from __future__ import annotations

import argparse
import json
import pickle
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.coverage_gates import Row, _grade

__all__ = ["census", "load_rows", "replay"]


class _Unpickler(pickle.Unpickler):
    """Reads a coverage_gates cache whether it was written by the module run as ``__main__`` or imported."""

    def find_class(self, module: str, name: str) -> Any:
        if name == "Row" and module in ("__main__", "bench.coverage_gates"):
            return Row
        return super().find_class(module, name)


def load_rows(path: str | Path) -> tuple[list[Row], Any]:
    """The rows and thresholds of a ``bench.coverage_gates --cache`` file (our own pickle)."""
    with open(path, "rb") as fh:
        rows, t = _Unpickler(fh).load()
    return list(rows), t


def census(rows: Sequence[Row], t: Any) -> dict[str, dict[str, int]]:
    """Per group: the answerable questions ``t`` leaves unanswered by the grade of the question's own answer
    (``unanswered_model_wrong`` / ``_right``), of those the ones every paraphrase (at least two) answers
    right (``..._paraphrases_right``), and the questions with a schema answer by its grade (``schema_right``,
    ``schema_wrong``; unanswerable questions' count as wrong)."""
    from agent._policy import decide

    out: dict[str, Counter[str]] = {}
    for r in rows:
        s = r.signals
        c = out.setdefault(r.group, Counter())
        c["n"] += 1
        view = s.schema_view
        if view is not None:
            c["schema_right" if _grade(view.text, r.gold) == 1 else "schema_wrong"] += 1
        if not r.gold or s.model is None or not s.model.text or decide(s, t).action != "abstain":
            continue
        own = "right" if _grade(s.model.text, r.gold) == 1 else "wrong"
        c[f"unanswered_model_{own}"] += 1
        if len(s.paraphrases) >= 2 and all(_grade(p.text, r.gold) == 1 for p in s.paraphrases):
            c[f"unanswered_model_{own}_paraphrases_right"] += 1
    return {g: dict(c) for g, c in sorted(out.items())}


def replay(rows: Sequence[Row], t: Any) -> dict[str, Any]:
    """The policy's totals on the rows under ``t``: hallucination (wrong / all), coverage of the answerable
    questions, unanswerable questions answered, and the schema step's own answers right / wrong."""
    from agent._policy import decide

    wrong = covered = answerable = unanswered = step_right = step_wrong = 0
    for r in rows:
        d = decide(r.signals, t)
        g = 0 if d.action == "abstain" else _grade(d.text, r.gold)
        wrong += g == -1
        if r.gold:
            answerable += 1
            covered += g != 0
        else:
            unanswered += g != 0
        if d.reason.startswith("schema phrasings"):
            step_right += g == 1
            step_wrong += g == -1
    return {
        "n": len(rows),
        "hallucination": wrong / max(1, len(rows)),
        "wrong": wrong,
        "coverage": covered / max(1, answerable),
        "unanswerable_answered": unanswered,
        "unanswerable": len(rows) - answerable,
        "schema_step_right": step_right,
        "schema_step_wrong": step_wrong,
    }


def fit(rows: Sequence[Row], t: Any, *, target: float = 0.02, confidence: float = 0.95) -> Any:
    """``t`` with the schema step fitted on ``rows`` as ``factagent calibrate --schema-phrasing`` fits it
    (the audit's grader and abstention rule; the unanswerable budget at ``confidence``)."""
    from agent._calibrate import _fit_schema_route, unanswerable_budget
    from eval import exact_match
    from eval.audit import is_abstention

    budget = unanswerable_budget(sum(not r.gold for r in rows), 0.02, confidence)
    return _fit_schema_route(
        [r.signals for r in rows],
        [r.gold for r in rows],
        replace(t, schema_model=1.01),
        lambda a, g: exact_match(a, tuple(g)),
        is_abstention,
        target=target,
        budget=budget,
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--cache", required=True, help="a bench.coverage_gates --cache file")
    ap.add_argument("--fit", action="store_true", help="fit the schema step on this cache (dev only)")
    ap.add_argument("--schema-model", type=float, default=1.01)
    ap.add_argument("--schema-familiarity", type=float, default=0.0)
    ap.add_argument("--set", action="append", default=[], help="a threshold for the replay, e.g. familiarity=-2.75")
    ap.add_argument("--calibration-set", action="store_true", help="only known, unknown and unanswerable rows")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    rows, t = load_rows(args.cache)
    if args.calibration_set:  # what factagent calibrate fits on (no edit questions)
        rows = [r for r in rows if r.group.split("/")[0] in ("known", "unknown", "unanswerable")]
    overrides = {k: float(v) for k, _, v in (kv.partition("=") for kv in args.set)}
    off = replace(t, **overrides, schema_model=1.01)
    given = {"schema_model": args.schema_model, "schema_familiarity": args.schema_familiarity}
    on = fit(rows, off) if args.fit else replace(off, **given)
    report = {
        "thresholds": on.as_dict(),
        "census": census(rows, off),
        "replay_off": replay(rows, off),
        "replay_on": replay(rows, on),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
