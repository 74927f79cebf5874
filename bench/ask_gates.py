"""The routing gates' prompts and CPU, side by side in one process (issue 30).

One agent on a prepared home (``bench/server_load.py``'s world slice) answers the 8 world questions of
``bench/ask_load.py`` as one batch (``Agent.ask_many``, the embedder's memo kept, as the server keeps it) and
one at a time (``Agent.ask``, the memo emptied first, as ``bench/ask_floor.py``), alternating in each round
between the signal collector with its lazy gates (``gated``: familiarity scored first, no closed-book prompt
for a subject it vetoes, no RAG prompt the policy would not read; :meth:`agent.SignalCollector.run`) and
without them (``ungated``: every prompt of the plan, as before the gates). Measured: process CPU per batch
and per question (p25 / p50), the model prompts per ask (``Agent.work``: generated and scored rows), the
model's forward calls and the token positions they read per batch, and whether the answers are the same
(action, text, citations; confidence within 1e-4; reasons compared apart: without the gates an abstention
names what fell short among what was measured, see ``SignalCollector.run``).

``PYTHONPATH=. .venv/bin/python bench/ask_gates.py --rounds 20`` (hold the CPU lock for figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.ask_load import QUESTIONS
from bench.score_reuse import _Forwards, _pcts

MODES = ("ungated", "gated")


def _same(a: Any, b: Any) -> bool:
    same = (a.action, a.text, a.citations) == (b.action, b.text, b.citations)
    return same and abs(a.confidence - b.confidence) < 1e-4


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--namespace", default="client0")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    from agent import Agent
    from agent.config import open_home
    from bench.server_load import _prepare_home

    root = Path(tempfile.mkdtemp(prefix="factagent-gates-"))
    try:
        _prepare_home(root / "home", 2)
        agent = Agent.open(open_home(root / "home"))
        counter = _Forwards(getattr(agent.collector.lm, "_model"))  # noqa: B009  # the lean module (read only)
        memo = agent.embedder
        cpu: dict[str, dict[str, list[float]]] = {m: {"batch": [], "one": []} for m in MODES}
        forwards: dict[str, list[tuple[int, int]]] = {m: [] for m in MODES}
        prompts: dict[str, list[float]] = {m: [] for m in MODES}
        answers: dict[str, list[Any]] = {}
        for mode in MODES:  # first use of each path (not timed)
            agent.collector.lazy_gates = mode == "gated"
            answers[mode] = agent.ask_many(list(QUESTIONS), args.namespace) + [
                agent.ask(q, args.namespace) for q in QUESTIONS
            ]
        for r in range(args.rounds):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                agent.collector.lazy_gates = mode == "gated"
                calls, tokens, before = counter.calls, counter.tokens, agent.work()
                t0 = time.process_time()
                agent.ask_many(list(QUESTIONS), args.namespace)
                cpu[mode]["batch"].append(time.process_time() - t0)
                forwards[mode].append((counter.calls - calls, counter.tokens - tokens))
                prompts[mode].append((agent.work() - before).model_prompts / len(QUESTIONS))
                for q in QUESTIONS:
                    if memo is not None:
                        memo.clear()
                    t0 = time.process_time()
                    agent.ask(q, args.namespace)
                    cpu[mode]["one"].append(time.process_time() - t0)
        counter.close()
        agent.close()
        pairs = list(zip(answers["ungated"], answers["gated"], strict=True))
        report: dict[str, Any] = {
            "rounds": args.rounds,
            "same_answers": all(_same(a, b) for a, b in pairs),
            "same_reasons": sum(a.reason == b.reason for a, b in pairs),
            "answers_compared": len(pairs),
            "max_confidence_diff": max(abs(a.confidence - b.confidence) for a, b in pairs),
        }
        for mode in MODES:
            report[mode] = {
                "batch_of_8": _pcts(cpu[mode]["batch"]),
                "one_question": _pcts(cpu[mode]["one"]),
                "model_prompts_per_ask": round(float(np.mean(prompts[mode])), 2),
                "forward_calls_per_batch": float(np.mean([c for c, _ in forwards[mode]])),
                "forward_tokens_per_batch": float(np.mean([t for _, t in forwards[mode]])),
            }
        sys.stdout.write(json.dumps(report) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
