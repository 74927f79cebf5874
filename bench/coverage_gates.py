# ruff: noqa: T201
"""Where the agent's coverage on world:test goes (issue 17): per question kind, which gate abstains.

The audit's agent answers about 0.74-0.77 of the answerable world:test questions at about 1% hallucination
(README "Telling facts in your own words"). This attributes every answerable question the agent does not
answer to what stopped it, and above all counts the ones the model's own closed-book answer would have got
right, by the parametric gate(s) that vetoed it:

* ``confidence``: ``model_confidence`` (first-token probability x paraphrase agreement, prior-discounted)
  below ``[policy] model``;
* ``familiarity``: the subject's name scores below ``[policy] familiarity``;
* ``pmi``: the answer's pmi below ``[policy] pmi``;
* ``agreement``: the share of paraphrase answers agreeing below ``[policy] agreement``.

A question fails any number of them; ``sole`` counts the ones that fail exactly one (lifting that gate alone
would let the right answer through). ``lift`` replays :func:`agent.decide` on every question (unanswerable
ones included) with one gate switched off, so it counts the right and wrong answers and the unanswerable
questions answered that gate holds back. Nothing is fitted; the home's calibrated thresholds are used as
served (``factagent --home H calibrate`` first: dev only).

The agent is built as the audit builds it (:func:`agent.wiring.build_agent` over a working memory holding the
world's UNKNOWN documents and EDITS, read through the ``world-edits`` namespace), and its signals are measured
in full (:meth:`agent.Agent.signals`, the calibration's path) then decided by the policy; the totals are
checked against the audit's in the README.

Run (nice 10, one thread; all 4,785 test questions)::

    PYTHONPATH=. nice -n 10 env OMP_NUM_THREADS=1 python -m bench.coverage_gates --home H --json out.json

``H``: a calibrated home (the world is loaded into its memory if it is not there yet).

Findings (2026-12-06, shipped thresholds 0.96 / -2.0 / 0.5, all 4,785 test questions; README "Where the
coverage goes"): every answerable question left unanswered is KNOWN; of 2,092 KNOWN questions 361 are stopped
with the model's own answer wrong (356 of them asked with held-out templates) and 810 with it right; those
fail familiarity 533 times, confidence 483, agreement 112, pmi 54 (familiarity alone 323, confidence alone
206). Switching familiarity off adds 323 right answers, no wrong one and 20 unanswerable questions answered:
it is the unanswerable guard. Admitting every right answer and nothing else reaches coverage 0.907.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GATES = ("confidence", "familiarity", "pmi", "agreement")
EDITS_NAMESPACE = "world-edits"  # eval.audit's EDITS_SCOPE_ID: where the audit writes the world's edits
_OFF = {"confidence": {"model": 0.0}, "familiarity": {"familiarity": -1e9}, "pmi": {"pmi": -1e9}}


def failing_gates(s: Any, t: Any) -> tuple[str, ...]:
    """The parametric gates of thresholds ``t`` (:class:`agent.PolicyThresholds`) that signals ``s`` fail."""
    out = []
    if s.model_confidence < t.model:
        out.append("confidence")
    if s.familiarity is not None and s.familiarity < t.familiarity:
        out.append("familiarity")
    if s.pmi is not None and s.pmi < t.pmi:
        out.append("pmi")
    if s.agreement is not None and s.agreement < t.agreement:
        out.append("agreement")
    return tuple(out)


def without_gate(t: Any, gate: str) -> Any:
    """``t`` with one parametric gate switched off."""
    return replace(t, **_OFF.get(gate, {"agreement": 0.0}))


@dataclass(frozen=True)
class Row:
    """One question: its group, gold answers, and the policy's action and answer on its signals."""

    group: str  # kind/template, e.g. known/heldout; unanswerable/missing or unanswerable/invented
    gold: tuple[str, ...]
    signals: Any  # agent.Signals


def _grade(answer: str, gold: Sequence[str]) -> int:
    """1 right, -1 wrong, 0 abstained (the audit's grader and abstention rule)."""
    from eval import exact_match
    from eval.audit import is_abstention

    if is_abstention(answer):
        return 0
    return 1 if gold and exact_match(answer, tuple(gold)) else -1


def outcome(s: Any, gold: Sequence[str], t: Any) -> tuple[str, int]:
    """The policy's action on ``s`` under ``t`` and its grade."""
    from agent._policy import decide

    d = decide(s, t)
    return d.action, (0 if d.action == "abstain" else _grade(d.text, gold))


def why_unanswered(s: Any, gold: Sequence[str], t: Any) -> str:
    """For an answerable question the agent abstains on: what stopped it.

    ``no model answer``, ``model wrong`` (its closed-book answer is wrong: rightly stopped), ``model right:
    <gates>`` (a right answer vetoed; ``+``-joined failing gates) or ``model right: memory disagrees``.
    """
    if s.model is None or not s.model.text or _grade(s.model.text, gold) == 0:
        return "no model answer"
    if _grade(s.model.text, gold) < 0:
        return "model wrong"
    gates = failing_gates(s, t)
    return "model right: " + ("+".join(gates) if gates else "memory disagrees")


def breakdown(rows: Sequence[Row], t: Any) -> dict[str, Any]:
    """Per group: answered right / wrong / abstained, why abstained, and each gate's lift (module docstring)."""
    out: dict[str, Any] = {}
    groups = sorted({r.group for r in rows})
    for g in [*groups, "all"]:
        mine = [r for r in rows if g in ("all", r.group)]
        grades = [outcome(r.signals, r.gold, t) for r in mine]
        actions = Counter(a for a, _ in grades)
        why = Counter(
            why_unanswered(r.signals, r.gold, t)
            for r, (a, _) in zip(mine, grades, strict=True)
            if a == "abstain" and r.gold
        )
        sole = Counter(
            w.removeprefix("model right: ") for w in why.elements() if w.startswith("model right: ") and "+" not in w
        )
        any_gate = Counter(gate for w in why.elements() if w.startswith("model right: ") for gate in w[13:].split("+"))
        lift: dict[str, dict[str, int]] = {}
        for gate in GATES:
            t2 = without_gate(t, gate)
            after = [outcome(r.signals, r.gold, t2)[1] for r in mine]
            lift[gate] = {
                "right": sum(a == 1 for a in after) - sum(b == 1 for _, b in grades),
                "wrong_answerable": sum(a == -1 for a, r in zip(after, mine, strict=True) if r.gold)
                - sum(b == -1 for (_, b), r in zip(grades, mine, strict=True) if r.gold),
                "unanswerable_answered": sum(a != 0 for a, r in zip(after, mine, strict=True) if not r.gold)
                - sum(b != 0 for (_, b), r in zip(grades, mine, strict=True) if not r.gold),
            }
        out[g] = {
            "n": len(mine),
            "right": sum(b == 1 for _, b in grades),
            "wrong": sum(b == -1 for _, b in grades),
            "abstained": sum(b == 0 for _, b in grades),
            "actions": dict(actions),
            "why_unanswered": dict(why.most_common()),
            "right_vetoed_by_gate": dict(any_gate.most_common()),
            "right_vetoed_by_one_gate_only": dict(sole.most_common()),
            "lift_one_gate": lift,
        }
    return out


def measure(home: str, limit: int = 0, split: str = "test") -> tuple[list[Row], Any]:
    """The world ``split``'s questions' full signals on an audit-built agent over ``home``, and its thresholds."""
    from agent.config import open_home
    from agent.wiring import build_agent, load_embedder, load_language_model, open_working_memory
    from eval.audit import prepare_world_memory
    from eval.world import DATA_DIR, load_world
    from eval.world._build import PERSON_RELATIONS

    world = load_world(DATA_DIR)
    people = {f.subject for f in world.facts if f.relation in PERSON_RELATIONS}
    qs = world.questions_in(split)  # type: ignore[arg-type]  # checked by argparse
    if limit and len(qs) > limit:  # evenly spaced, as the audit's --limit (eval.audit's sample_evenly)
        qs = [qs[int(i * len(qs) / limit)] for i in range(limit)]
    h = open_home(home)
    wm = open_working_memory(h, load_embedder(h))
    try:
        prepare_world_memory(wm, world)
        agent = build_agent(h, wm, load_language_model(h, None, threads=False))
        sig: list[Any] = []
        for start in range(0, len(qs), 64):
            sig += agent.signals([q.text for q in qs[start : start + 64]], EDITS_NAMESPACE)
            logger.info("%d / %d", len(sig), len(qs))
        thresholds = agent.thresholds
    finally:
        wm.close()

    def group(q: Any) -> str:
        if q.kind == "unanswerable":
            return "unanswerable/" + ("missing" if q.subject in people else "invented")
        return f"{q.kind}/{q.template}"

    rows = [Row(group=group(q), gold=tuple(q.answers), signals=s) for q, s in zip(qs, sig, strict=True)]
    return rows, thresholds


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--home", default="", help="a calibrated home (not needed with a --cache that exists)")
    ap.add_argument("--limit", type=int, default=0, help="an evenly spaced sample of this many test questions")
    ap.add_argument("--split", choices=("test", "dev"), default="test", help="dev: the calibration's questions")
    ap.add_argument("--json", default="")
    ap.add_argument("--cache", default="", help="a pickle keeping the measured rows and thresholds between runs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cache and Path(args.cache).exists():
        with open(args.cache, "rb") as fh:
            rows, t = pickle.load(fh)  # our own cache file
    else:
        rows, t = measure(args.home, args.limit, args.split)
        if args.cache:
            with open(args.cache, "wb") as fh:
                pickle.dump((rows, t), fh)
    report = {"split": args.split, "thresholds": t.as_dict(), "groups": breakdown(rows, t)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
