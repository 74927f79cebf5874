"""The agent over a served model vs in-process: hallucination, coverage and p50 ask latency in one table.

The same reference GPT-2, once in-process (``HFLanguageModel``) and once served by llama.cpp's
OpenAI-compatible server on loopback (``bench.inference_servers.py``; the GGUF from ``.ci/llama_server.sh``),
over one working memory holding the world's UNKNOWN documents and facts. Each backend's agent is calibrated
on the world's dev questions (its own signals: the target is the same, the thresholds are its own), then
answers the test questions (known, unknown, unanswerable), graded as ``agent-bench`` grades
(:func:`eval.agent_bench.rates`), from every signal, and again as ``Agent.ask`` decides (only the signals that
can change the decision: ``routed_decisions_changed`` must be 0). Latency: ``Agent.ask`` one question at a
time, p50 over ``--latency-n`` test questions, the two backends interleaved question by question (the load
of a shared machine weighs on both alike), with the model calls (and requests, split by kind, for the
served model) per ask. ``--thresholds-from`` reuses an earlier run's thresholds instead of calibrating.

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
    agent: Any, world: Any, *, per_kind: int, calibrate_limit: int, seed: int, thresholds: dict[str, Any] | None
) -> dict[str, Any]:
    """Calibrate ``agent`` on dev (or take ``thresholds``), then grade it on test, full signals and routed."""
    import random

    from agent import PolicyThresholds
    from agent._calibrate import calibrate
    from eval._normalize import exact_match
    from eval.agent_bench import rates
    from eval.audit import is_abstention

    kinds = ("known", "unknown", "unanswerable")
    dev = [q for q in world.questions if q.split == "dev" and q.kind in kinds]
    if calibrate_limit and len(dev) > calibrate_limit:
        dev = sorted(random.Random(seed).sample(dev, calibrate_limit), key=lambda q: q.id)
    t0 = time.perf_counter()
    fitted: dict[str, Any] = {}
    if thresholds is None:
        dev_signals = _signals(agent, [q.text for q in dev])
        golds = [q.answers for q in dev]
        # graded as agent-bench and the audit grade: exact match, is_abstention for what is an abstention
        cal = calibrate(
            dev_signals, golds, lambda a, g: exact_match(a, tuple(g)), target=TARGET, abstains=is_abstention
        )
        agent.thresholds = cal.thresholds
        fitted = {"dev_hallucination": cal.hallucination_rate, "dev_coverage": cal.coverage}
    else:
        agent.thresholds = PolicyThresholds(**thresholds)
    t_cal = time.perf_counter() - t0
    test = _test_questions(world, per_kind, seed)
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
    unavailable = sorted({u for a in answers if a.signals for u in a.signals.unavailable})
    return {
        **rates([a.text for a in answers], [q.gold for q in test]),
        "actions": {k: sum(a.action == k for a in answers) for k in ("kg", "retrieval", "parametric", "abstain")},
        **fitted,
        "thresholds": agent.thresholds.as_dict(),
        "unavailable_signals": unavailable,
        "routed_decisions_changed": changed,  # ask's answers that differ from the full signals' (should be 0)
        "seconds": {"calibrate": round(t_cal, 1), "test": round(t_test, 1), "test_routed": round(t_routed, 1)},
    }


def _test_questions(world: Any, per_kind: int, seed: int) -> list[Any]:
    from eval.agent_bench._questions import sample_questions

    return sample_questions(world, "test", ("known", "unknown", "unanswerable"), per_kind, seed)


def time_asks(agents: dict[str, Any], questions: list[str]) -> dict[str, dict[str, Any]]:
    """Single ``Agent.ask`` calls, the backends interleaved question by question (which goes first
    alternating), so that the machine's load weighs on each alike; latency and model calls per backend."""
    timed: dict[str, list[Any]] = {name: [] for name in agents}
    usages = {name: getattr(agent.lm, "usage", None) for name, agent in agents.items()}
    before = {name: (u.snapshot()[0], u.kinds()) for name, u in usages.items() if u is not None}
    names = list(agents)
    for n, question in enumerate(questions):
        for name in names if n % 2 == 0 else names[::-1]:
            timed[name].append(agents[name].ask(question))
    out: dict[str, dict[str, Any]] = {}
    for name, answers in timed.items():
        latencies = [a.latency_s for a in answers]
        measured = [a.signals for a in answers if a.signals is not None]
        figures: dict[str, Any] = {
            "p50_ask_s": statistics.median(latencies),
            "p90_ask_s": statistics.quantiles(latencies, n=10)[-1] if len(latencies) > 1 else None,
            "calls_per_ask": statistics.mean(a.model_calls for a in answers),
            "max_calls_per_ask": max(a.model_calls for a in answers),
            "p50_ask_s_by_calls": {  # model calls per ask -> (asks, their p50 latency): where the time goes
                str(n): (sum(a.model_calls == n for a in answers), statistics.median(by))
                for n in sorted({a.model_calls for a in answers})
                if (by := [a.latency_s for a in answers if a.model_calls == n])
            },
            "prompts_per_ask_by_signal": {  # prompts per ask behind each signal (rows scored: familiarity, pmi)
                "model": _mean([s.model is not None for s in measured]),
                "rag": _mean([s.rag is not None for s in measured]),
                "paraphrases": _mean([len(s.paraphrases) for s in measured]),
                "prior": _mean([s.prior is not None for s in measured]),
                "familiarity": _mean([s.familiarity is not None for s in measured]),
                "pmi": _mean([2 * (s.pmi is not None) for s in measured]),
            },
        }
        usage = usages[name]
        if usage is not None:
            requests, kinds = before[name]
            figures["requests_per_ask"] = (usage.snapshot()[0] - requests) / len(answers)
            figures["requests_per_ask_by_kind"] = {  # generation / forced / tokenize / echo
                k: round((v - kinds.get(k, 0)) / len(answers), 2) for k, v in sorted(usage.kinds().items())
            }
        out[name] = figures
    return out


def run(
    server: str,
    gguf: Path | None,
    *,
    per_kind: int,
    calibrate_limit: int,
    latency_n: int,
    seed: int,
    served_only: bool = False,
    thresholds: dict[str, Any] | None = None,
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
            agents = {name: Agent(wm, lm) for name, lm in backends}
            for name, agent in agents.items():
                logging.getLogger(__name__).info("measuring %s", name)
                out[name] = measure(
                    agent,
                    world,
                    per_kind=per_kind,
                    calibrate_limit=calibrate_limit,
                    seed=seed,
                    thresholds=(thresholds or {}).get(name),
                )
            test = _test_questions(world, per_kind, seed)
            sample = [q.question.text for q in test[:: max(1, len(test) // latency_n)][:latency_n]]
            for name, figures in time_asks(agents, sample).items():
                out[name].update(figures)
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
    parser.add_argument(
        "--thresholds-from", type=Path, default=None, help="an earlier --json output: its thresholds, no calibration"
    )
    args = parser.parse_args(argv)
    earlier = json.loads(args.thresholds_from.read_text(encoding="utf-8")) if args.thresholds_from else {}
    given = {name: earlier[name]["thresholds"] for name in ("in-process", "served") if name in earlier}
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
        thresholds=given or None,
    )
    text = json.dumps(figures, indent=2) if args.json or args.served_only else table(figures)
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
