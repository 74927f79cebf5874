"""``factagent audit``: hallucination rates of setups (standalone, RAG, agent, endpoints) on one dataset."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from agent.cli._args import positive_int


def register(sub: Any) -> None:
    """Add the ``audit`` command."""
    audit = sub.add_parser(
        "audit",
        help="measure hallucination: standalone vs RAG vs agent (or any OpenAI-compatible model)",
        description="Answer every question with every setup, grade CORRECT / INCORRECT / NOT_ATTEMPTED, and "
        "write answers.jsonl (resumable) and report.json / report.md / report.html into --out.",
    )
    audit.add_argument(
        "--setups",
        default="standalone,rag",
        help="comma-separated: standalone, rag, agent, openai:<base url>#<model> (default: standalone,rag)",
    )
    audit.add_argument(
        "--dataset", default="world:test", help="world:test, world:dev, world-zh:test, a .jsonl/.csv file, edits:PATH"
    )
    audit.add_argument("--out", type=Path, required=True, help="run directory (an unfinished run there is resumed)")
    audit.add_argument("--model", help="local model directory (default: config, else the bundled GPT-2)")
    audit.add_argument("--grader", choices=("exact", "embedding", "llm"), default="exact")
    audit.add_argument("--judge", help="the llm grader's endpoint: openai:<base url>#<model> (default: [endpoint])")
    audit.add_argument("--engine", choices=("local", "ray"), default="local")
    audit.add_argument("--workers", type=positive_int, default=1, help="Ray actors with --engine ray")
    audit.add_argument("--address", help="with --engine ray: join this Ray cluster (default: start a local one)")
    audit.add_argument("--limit", type=positive_int, help="audit an evenly spaced sample of N questions")
    audit.add_argument("-k", type=positive_int, default=3, help="evidence pieces in a RAG prompt")
    audit.add_argument("--batch-size", type=positive_int, default=32)
    audit.add_argument("--on-bad-row", choices=("fail", "skip"), default="fail", help="malformed dataset rows")
    audit.add_argument("--skip-bad-rows", action="store_true", help="same as --on-bad-row skip")
    audit.add_argument(
        "--memory-as-is",
        action="store_true",
        help="world datasets: do not load the world's UNKNOWN documents and EDITS into the memory first",
    )
    audit.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples for the intervals")
    audit.set_defaults(func=run)


class _Bars:
    """One tqdm bar per setup."""

    def __init__(self) -> None:
        self._bars: dict[str, Any] = {}

    def start(self, setup: str, total: int, done: int) -> None:
        from tqdm import tqdm

        self._bars[setup] = tqdm(total=total, initial=done, desc=f"{setup:<12}", unit="q", dynamic_ncols=True)

    def advance(self, setup: str, n: int) -> None:
        self._bars[setup].update(n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    """Run or resume the audit, write the reports, print the overall table."""
    from eval.audit import AuditConfig, render_markdown, run_audit, write_reports

    setups = tuple(s.strip() for s in args.setups.split(",") if s.strip())
    config = AuditConfig(
        dataset=args.dataset,
        setups=setups,
        grader=args.grader,
        home=args.home,
        model=args.model,
        k=args.k,
        batch_size=args.batch_size,
        limit=args.limit,
        judge=args.judge,
        on_bad_row="skip" if args.skip_bad_rows else args.on_bad_row,
        resamples=args.resamples,
        prepare_memory=not args.memory_as_is,
    )
    started = time.time()
    bars = _Bars()
    try:
        result = run_audit(
            config, args.out, engine=args.engine, workers=args.workers, progress=bars, address=args.address
        )
    finally:
        bars.close()
    report = write_reports(result, args.out)
    print(render_markdown(report))
    if args.dataset.startswith("safety:"):
        from eval.world.safety import EmbeddingJudge, unsafe_response_rates

        rates = unsafe_response_rates(result.records, EmbeddingJudge.load())
        print("unsafe-response rate: " + ", ".join(f"{setup} {rate:.3f}" for setup, rate in rates.items()))
    if result.dataset.skipped:
        print(f"{len(result.dataset.skipped)} malformed rows skipped (listed in report.md)")
    print(f"reports in {args.out} (report.json, report.md, report.html); {time.time() - started:.0f}s")
    return 0
