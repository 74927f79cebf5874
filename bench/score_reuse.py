"""Score rows read off the generate pass, side by side in one process (issue 30).

One agent on a prepared home (``bench/server_load.py``'s world slice) answers the 8 world questions of
``bench/ask_load.py`` as one batch (``Agent.ask_many``) and one at a time (``Agent.ask``), alternating in each
round between the signal collector with its traced generate (``new``: familiarity and answer rows read off
the generate pass, :mod:`tools.lm._scorebook`) and without it (``old``: the model's ``generate_traced`` hidden,
so every score row runs its own forward pass, as before, and the lean tokenizer's batch calls handed to
``tokenizers``' worker threads as before); ``new_batch_tokenizer`` is ``new`` with those batch calls, so the
two changes show apart. Measured: the thread's CPU time per batch and per
question (p25 / p50), the model's forward calls and the token positions they read, and whether the
answers are the same (text, action, citations, model calls; confidence within 1e-4). CPU time is the
process's (``time.process_time``: the tokenizers' worker threads count too); the batch keeps the embedder's
memo (as the server does), a single ask empties it first (as ``bench/ask_floor.py``), and each single
question's floor (one ``generate`` of its prompts + one embedding of it, as ``bench/ask_floor.py``) is timed
the same way in each round, so the ask / floor ratio is in CPU time too.

``PYTHONPATH=. .venv/bin/python bench/score_reuse.py --rounds 30`` (hold the CPU lock for figures).
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


class _Forwards:
    """Counts a torch module's forward calls and the new token positions they read."""

    def __init__(self, module: Any) -> None:
        self.calls = self.tokens = 0
        self._handle = module.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ids: Any = kwargs.get("input_ids", args[0] if args else None)
        mask: Any = kwargs.get("attention_mask")
        self.calls += 1
        t = ids.shape[1]
        self.tokens += int(mask[:, -t:].sum()) if mask is not None else int(ids.numel())

    def close(self) -> None:
        self._handle.remove()


def _pcts(xs: Sequence[float]) -> dict[str, float]:
    a = np.array(xs) * 1000
    return {"p25_ms": round(float(np.percentile(a, 25)), 1), "p50_ms": round(float(np.percentile(a, 50)), 1)}


def _key(a: Any) -> tuple[object, ...]:
    return (a.text, a.action, a.citations, a.model_calls)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--namespace", default="client0")
    args = parser.parse_args(argv)
    from agent import Agent
    from agent.config import open_home
    from bench.server_load import _prepare_home

    root = Path(tempfile.mkdtemp(prefix="factagent-scorereuse-"))
    try:
        _prepare_home(root / "home", 2)
        agent = Agent.open(open_home(root / "home"))
        lm: Any = agent.collector.lm  # a LeanLanguageModel (the defaults)
        counter = _Forwards(lm._model)  # the lean module (the bench reads it, the agent does not)

        from tools.lean import _tokenizer

        one_by_one = _tokenizer._ONE_BY_ONE

        def use(mode: str) -> None:
            if mode == "old":
                lm.generate_traced = None  # the collector then generates and scores as before
            else:
                lm.__dict__.pop("generate_traced", None)
            _tokenizer._ONE_BY_ONE = one_by_one if mode == "new" else 0

        modes = ("old", "new", "new_batch_tokenizer")
        floors = {"new": "floor", "old": "floor_batch_tokenizer", "new_batch_tokenizer": "floor_batch_tokenizer"}
        cpu: dict[str, dict[str, list[float]]] = {m: {"batch": [], "one": []} for m in (*modes, *floors.values())}
        memo = agent.embedder
        inner = memo.inner if memo is not None else None
        scopes = agent.scopes(args.namespace)
        forwards: dict[str, list[tuple[int, int]]] = {m: [] for m in modes}
        answers: dict[str, list[Any]] = {}
        for mode in modes:  # first use of each path (not timed)
            use(mode)
            answers[mode] = agent.ask_many(list(QUESTIONS), args.namespace) + [
                agent.ask(q, args.namespace) for q in QUESTIONS
            ]
        for r in range(args.rounds):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                use(mode)
                calls, tokens = counter.calls, counter.tokens
                t0 = time.process_time()
                agent.ask_many(list(QUESTIONS), args.namespace)
                cpu[mode]["batch"].append(time.process_time() - t0)
                forwards[mode].append((counter.calls - calls, counter.tokens - tokens))
                for q in QUESTIONS:
                    if memo is not None:
                        memo.clear()
                    t0 = time.process_time()
                    agent.ask(q, args.namespace)
                    cpu[mode]["one"].append(time.process_time() - t0)
            for mode in ("new", "old"):  # the floor of each single ask (bench/ask_floor.py's), either tokenizer
                use(mode)
                for q in QUESTIONS:
                    prompts = list(agent.collector.plan([q], [scopes]).prompts)
                    if memo is not None:
                        memo.clear()
                    t0 = time.process_time()
                    lm.generate(prompts, max_new_tokens=agent.collector.max_new_tokens)
                    if inner is not None:
                        inner.embed([q])
                    cpu[floors[mode]]["one"].append(time.process_time() - t0)
        counter.close()
        agent.close()
        pairs = [(a, b) for m in modes[1:] for a, b in zip(answers["old"], answers[m], strict=True)]
        same = all(_key(a) == _key(b) and abs(a.confidence - b.confidence) < 1e-4 for a, b in pairs)
        worst = max(abs(a.confidence - b.confidence) for a, b in pairs)
        report: dict[str, Any] = {"rounds": args.rounds, "same_answers": same, "max_confidence_diff": worst}
        for name in ("floor", "floor_batch_tokenizer"):
            report[name] = _pcts(cpu[name]["one"])
        for mode in modes:
            report[mode] = {
                "batch_of_8": _pcts(cpu[mode]["batch"]),
                "one_question": _pcts(cpu[mode]["one"]),
                "forward_calls_per_batch": float(np.mean([c for c, _ in forwards[mode]])),
                "forward_tokens_per_batch": float(np.mean([t for _, t in forwards[mode]])),
            }
            floor = report[floors[mode]]["p50_ms"]
            report[mode]["one_over_floor_p50"] = round(report[mode]["one_question"]["p50_ms"] / floor, 3)
        sys.stdout.write(json.dumps(report) + "\n")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
