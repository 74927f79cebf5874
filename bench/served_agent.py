"""The agent over a served model vs in-process: hallucination, coverage and p50 ask latency in one table.

The same reference GPT-2, once in-process (``HFLanguageModel``) and once served by llama.cpp's
OpenAI-compatible server on loopback (``bench.inference_servers.py``; the GGUF from ``.ci/llama_server.sh``),
over one working memory holding the world's UNKNOWN documents and facts. Each backend's agent is calibrated
on the world's dev questions (its own signals: the target is the same, the thresholds are its own), then
answers the test questions (known, unknown, unanswerable), graded as ``agent-bench`` grades
(:func:`eval.agent_bench.rates`). Latency: ``Agent.ask`` one question at a time, p50 over ``--latency-n``
test questions, with the model calls (requests, for the served model) per ask.

Example:
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.served_agent --server transformers --per-kind 300
    GGUF=$(bash .ci/llama_server.sh .venv/bin/python | tail -n 1)
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m bench.served_agent --server llama --gguf "$GGUF"
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.inference_servers import REFERENCE_MODEL, cached_gguf, llama_server, transformers_server

TARGET = 0.02


def _signals(agent: Any, questions: list[str]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(questions), 64):
        out += agent.signals(questions[start : start + 64])
    return out


def _mean(values: list[float] | list[int] | list[bool]) -> float:
    return round(statistics.mean(values), 2) if values else 0.0


def measure(
    agent: Any, world: Any, *, per_kind: int, calibrate_limit: int, latency_n: int, seed: int
) -> dict[str, Any]:
    """Calibrate ``agent`` on dev, then grade it on test and time single asks."""
    import random

    from agent._calibrate import calibrate
    from eval._normalize import exact_match
    from eval.agent_bench import rates
    from eval.agent_bench._questions import sample_questions

    kinds = ("known", "unknown", "unanswerable")
    dev = [q for q in world.questions if q.split == "dev" and q.kind in kinds]
    if calibrate_limit and len(dev) > calibrate_limit:
        dev = sorted(random.Random(seed).sample(dev, calibrate_limit), key=lambda q: q.id)
    t0 = time.perf_counter()
    dev_signals = _signals(agent, [q.text for q in dev])
    cal = calibrate(dev_signals, [q.answers for q in dev], lambda a, g: exact_match(a, tuple(g)), target=TARGET)
    agent.thresholds = cal.thresholds
    t_cal = time.perf_counter() - t0
    test = sample_questions(world, "test", kinds, per_kind, seed)
    t0 = time.perf_counter()
    answers = [agent.decide(s) for s in _signals(agent, [q.question.text for q in test])]
    t_test = time.perf_counter() - t0
    # what ask does: only the signals that can change the decision (must decide exactly as the full ones)
    t0 = time.perf_counter()
    routed = [
        a
        for start in range(0, len(test), 64)
        for a in agent.ask_many([q.question.text for q in test[start : start + 64]])
    ]
    t_routed = time.perf_counter() - t0
    changed = sum((a.action, a.text) != (b.action, b.text) for a, b in zip(answers, routed, strict=True))
    figures = rates([a.text for a in answers], [q.gold for q in test])
    usage = getattr(agent.lm, "usage", None)
    before = usage.snapshot()[0] if usage is not None else 0
    kinds_before = usage.kinds() if usage is not None else {}
    timed = [agent.ask(q.question.text) for q in test[:: max(1, len(test) // latency_n)][:latency_n]]
    requests = (usage.snapshot()[0] - before) / len(timed) if usage is not None else None
    by_kind = (
        {k: round((v - kinds_before.get(k, 0)) / len(timed), 2) for k, v in sorted(usage.kinds().items())}
        if usage is not None
        else None
    )
    measured = [a.signals for a in timed if a.signals is not None]
    per_signal = {  # prompts per ask behind each signal (rows scored, for familiarity and pmi)
        "model": _mean([s.model is not None for s in measured]),
        "rag": _mean([s.rag is not None for s in measured]),
        "paraphrases": _mean([len(s.paraphrases) for s in measured]),
        "prior": _mean([s.prior is not None for s in measured]),
        "familiarity": _mean([s.familiarity is not None for s in measured]),
        "pmi": _mean([2 * (s.pmi is not None) for s in measured]),
    }
    unavailable = sorted({u for a in answers if a.signals for u in a.signals.unavailable})
    return {
        **figures,
        "p50_ask_s": statistics.median(a.latency_s for a in timed),
        "p90_ask_s": statistics.quantiles([a.latency_s for a in timed], n=10)[-1] if len(timed) > 1 else None,
        "calls_per_ask": statistics.mean(a.model_calls for a in timed),
        "max_calls_per_ask": max(a.model_calls for a in timed),
        "requests_per_ask": requests,  # HTTP requests (served; tokenizer and forced-token ones included)
        "requests_per_ask_by_kind": by_kind,  # generation / forced / tokenize / echo
        "prompts_per_ask_by_signal": per_signal,
        "actions": {k: sum(a.action == k for a in answers) for k in ("kg", "retrieval", "parametric", "abstain")},
        "dev_hallucination": cal.hallucination_rate,
        "dev_coverage": cal.coverage,
        "thresholds": cal.thresholds.as_dict(),
        "unavailable_signals": unavailable,
        "routed_decisions_changed": changed,  # ask's answers that differ from the full signals' (should be 0)
        "seconds": {"calibrate": round(t_cal, 1), "test": round(t_test, 1), "test_routed": round(t_routed, 1)},
    }


def run(
    server: str,
    gguf: Path | None,
    *,
    per_kind: int,
    calibrate_limit: int,
    latency_n: int,
    seed: int,
    served_only: bool = False,
) -> dict[str, Any]:
    from agent import Agent
    from agent.cli._agent import ensure_world_loaded
    from agent.config import open_home
    from agent.wiring import load_language_model, open_working_memory
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR
    from tools.lm import PromptFormat, ServedLanguageModel

    world = load_world(DATA_DIR)
    out: dict[str, Any] = {"target_hallucination": TARGET, "per_kind": per_kind, "split": "test"}
    started = llama_server(gguf) if server == "llama" and gguf else transformers_server()
    with tempfile.TemporaryDirectory(prefix="served-bench-") as tmp, started as srv:
        home = open_home(tmp)
        wm = open_working_memory(home)
        try:
            local = load_language_model(home)
            served = ServedLanguageModel(
                srv.base_url, srv.model, prompt_format=PromptFormat.load(REFERENCE_MODEL), max_concurrency=4
            )
            in_process = Agent(wm, local)
            ensure_world_loaded(in_process, world)
            backends = (("in-process", local), ("served", served))[1 if served_only else 0 :]
            for name, lm in backends:
                logging.getLogger(__name__).info("measuring %s", name)
                out[name] = measure(
                    Agent(wm, lm),
                    world,
                    per_kind=per_kind,
                    calibrate_limit=calibrate_limit,
                    latency_n=latency_n,
                    seed=seed,
                )
            out["served"]["server"] = {"llama": "llama.cpp (llama-cpp-python)", "transformers": "transformers serve"}[
                server
            ]
            out["served"]["requests_total"], out["served"]["retries_total"], _ = served.usage.snapshot()
        finally:
            wm.close()
    if served_only:
        return out
    a, b = out["in-process"], out["served"]
    out["coverage_gap_points"] = round(100 * (a["coverage"] - b["coverage"]), 2)
    out["latency_ratio"] = b["p50_ask_s"] / a["p50_ask_s"] if a["p50_ask_s"] else None
    return out


def table(f: dict[str, Any]) -> str:
    head = f"{'backend':<12}{'halluc.':>9}{'coverage':>10}{'accuracy':>10}{'n':>6}{'p50 ask':>10}{'calls':>7}"
    rows = [head]
    for name in ("in-process", "served"):
        r = f[name]
        rows.append(
            f"{name:<12}{r['hallucination_rate']:>9.3f}{r['coverage']:>10.3f}{r['accuracy']:>10.3f}{r['n']:>6}"
            f"{1000 * r['p50_ask_s']:>8.0f}ms{r['calls_per_ask']:>7.1f}"
        )
    rows.append(f"coverage gap {f['coverage_gap_points']:.2f} points; p50 latency ratio {f['latency_ratio']:.2f}x")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--server", choices=["transformers", "llama"], default="transformers")
    parser.add_argument("--gguf", type=Path, default=None, help="llama: the converted model (default: cached)")
    parser.add_argument("--per-kind", type=int, default=300, help="test questions per kind (0: all)")
    parser.add_argument("--calibrate-limit", type=int, default=0, help="dev questions when calibrating (0: all)")
    parser.add_argument("--latency-n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--served-only", action="store_true", help="skip the in-process agent (JSON only)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    gguf = args.gguf or cached_gguf()
    if args.server == "llama" and gguf is None:
        parser.error("no --gguf, and no cached conversion (run .ci/llama_server.sh first)")
    figures = run(
        args.server,
        gguf,
        per_kind=args.per_kind,
        calibrate_limit=args.calibrate_limit,
        latency_n=args.latency_n,
        seed=args.seed,
        served_only=args.served_only,
    )
    text = json.dumps(figures, indent=2) if args.json or args.served_only else table(figures)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
