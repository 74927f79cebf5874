"""Where one idle ask's time goes beyond its floor (issue 30): per-stage wall time, in this process.

Each round asks every question once per mode on an idle agent (the embedder's memo emptied before each ask,
as for a new question), timing the ask's stages, then its floor as :mod:`bench.ask_floor` defines it (one
plain batched ``generate`` of the ask's prompts + one embedding of the question). Modes alternate question
by question, so the machine's load falls on both alike:

- ``joint``: the shipped ask (the texts linking embeds go in the question's embedder call);
- ``separate``: the same code with only the question embedded up front, so that linking embeds its own
  text in a second call (the ask before this change).

Reported per mode: the p50 of the asks and of their floors and their ratio (as :mod:`bench.ask_floor`),
and the mean wall ms of each stage (means add up; the questions differ, so p50s would not): ``embed`` (the
embedder calls: the up-front one, and in ``separate`` mode linking's own inside ``plan``), ``warm_texts``
(finding what to embed), ``plan`` (linking and retrieval under the read lock; ``link`` and ``retrieve``
inside it), ``generate`` (the traced batched ``generate``), ``run`` (``generate`` plus scores and
assembly), ``decide`` (guard and policy), ``other`` (the ask minus its outermost timed stages:
bookkeeping), ``excess`` (the ask minus its floor).

Example:
    flock /work/wt/cpu.lock env OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/ask_stages.py --rounds 10
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.ask_load import QUESTIONS
from bench.server_load import _prepare_home

MODES = ("separate", "joint")
STAGES = ("embed", "warm_texts", "plan", "link", "retrieve", "generate", "run", "decide", "other")


class _Clock:
    """Accumulates the wall time of wrapped calls by stage name (reset before each ask)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)  # every call of a stage
        self.outer = 0.0  # calls not inside another timed call (they add up to the ask's timed part)
        self._depth = 0

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        inner: Callable[..., Any] = getattr(owner, attr)

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            self._depth += 1
            try:
                return inner(*args, **kwargs)
            finally:
                self._depth -= 1
                took = time.perf_counter() - t0
                self.spent[stage] += took
                if self._depth == 0:
                    self.outer += took

        setattr(owner, attr, timed)


def _p50(xs: Sequence[float]) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, 50)), 2)


def ask_stages(home: Path, questions: Sequence[str], rounds: int, namespace: str = "client0") -> dict[str, Any]:
    """Per-stage p50 ms of idle asks and their floors, per mode (see the module docstring)."""
    from agent import Agent
    from agent.config import open_home
    from memory import Scope

    agent = Agent.open(open_home(home))
    try:
        memo, collector = agent.embedder, agent.collector
        if memo is None:
            raise SystemExit("this home's agent has no memoising embedder")
        inner, plain_generate = memo.inner, collector.lm.generate
        clock = _Clock()
        joint_warm = collector.warm_texts
        clock.wrap(memo, "embed", "embed")
        clock.wrap(collector, "warm_texts", "warm_texts")
        clock.wrap(collector, "plan", "plan")
        clock.wrap(collector, "link", "link")
        clock.wrap(collector, "_retrieve", "retrieve")
        clock.wrap(collector.lm, "generate_traced", "generate")
        clock.wrap(collector, "run", "run")
        clock.wrap(agent, "decide", "decide")
        timed_warm = collector.warm_texts

        def separate_warm(qs: Sequence[str], scopes: Sequence[Sequence[Scope]]) -> list[str]:
            timed_warm(qs, scopes)  # the same lookups, then the questions only
            return list(dict.fromkeys(qs))

        for q in questions:  # first use: template matrices, lazy imports
            agent.ask(q, namespace)
        rows: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in MODES}
        calls: dict[str, list[int]] = {m: [] for m in MODES}
        for _ in range(rounds):
            for question in questions:
                for mode in MODES:
                    setattr(collector, "warm_texts", separate_warm if mode == "separate" else timed_warm)  # noqa: B010
                    memo.clear()
                    clock.spent.clear()
                    clock.outer = 0.0
                    before = memo.counts().calls
                    t0 = time.perf_counter()
                    agent.ask(question, namespace)
                    ask = time.perf_counter() - t0
                    calls[mode].append(memo.counts().calls - before)
                    spent, outer = dict(clock.spent), clock.outer
                    plan = collector.plan([question], [agent.scopes(namespace)])
                    t0 = time.perf_counter()
                    plain_generate(list(plan.prompts), max_new_tokens=collector.max_new_tokens)
                    gen = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    inner.embed([question])
                    emb = time.perf_counter() - t0
                    got = {**{s: spent.get(s, 0.0) for s in STAGES}, "ask": ask, "floor": gen + emb}
                    got["other"] = ask - outer
                    got["floor_generate"], got["floor_embed"], got["excess"] = gen, emb, ask - gen - emb
                    for key, value in got.items():
                        rows[mode][key].append(value)
        setattr(collector, "warm_texts", joint_warm)  # noqa: B010
    finally:
        agent.close()
    out: dict[str, Any] = {}
    for mode in MODES:
        ask, floor = _p50(rows[mode]["ask"]), _p50(rows[mode]["floor"])
        out[mode] = {
            "ask_p50_ms": ask,
            "floor_p50_ms": floor,
            "ask_over_floor": round(ask / floor, 3),
            "mean_ms": {key: round(float(np.mean(values)) * 1000, 2) for key, values in rows[mode].items()},
            "embedder_calls_per_ask": round(float(np.mean(calls[mode])), 3),
            "asks": len(rows[mode]["ask"]),
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10, help="passes through the questions per mode")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    with tempfile.TemporaryDirectory(prefix="factagent-stages-") as tmp:
        home = Path(tmp) / "home"
        _prepare_home(home, 1)
        result = ask_stages(home, QUESTIONS, args.rounds)
    sys.stdout.write(json.dumps(result) + "\n")
    keys = ("ask", "floor", "excess", *STAGES, "floor_generate", "floor_embed")
    head = "| mode | ask p50 | floor p50 | ask / floor | embedder calls / ask | " + " | ".join(keys) + " (means) |\n"
    sys.stderr.write(head + "|---" * (len(keys) + 5) + "|\n")
    for mode in MODES:
        r = result[mode]
        cells = " | ".join(f"{r['mean_ms'][k]:.2f}" for k in keys)
        sys.stderr.write(
            f"| {mode} | {r['ask_p50_ms']} | {r['floor_p50_ms']} | {r['ask_over_floor']} | "
            f"{r['embedder_calls_per_ask']} | {cells} |\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
