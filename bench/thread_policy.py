"""Torch intra-op threads for the agent's model calls (issue 30, part 3): wall and CPU seconds per setting.

Loads the bundled GPT-2 reference model and MiniLM once, then for each thread count runs the work of one
ask's model calls (one batched greedy ``generate`` of 7 prompts x 12 tokens, as an ask issues; one
question embedding) ``--rounds`` times, interleaving the settings round by round so that other processes'
load falls on all of them alike. Reports wall and process-CPU medians: on a machine shared with other
jobs, more threads than free cores spin and stall (CPU seconds rise, wall seconds too).

Example:
    PYTHONPATH=. .venv/bin/python bench/thread_policy.py --threads 1,2 --rounds 15
    # one JSON object on stdout: per thread count, median wall and CPU ms of generate and of embed
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

PROMPTS = [
    "Q: Who is the CEO of Nokia?\nA:",
    "Q: Who is the mother of Isaac Newton?\nA:",
    "Context: Nokia is led by Pekka Lundmark.\nQ: Who is the CEO of Nokia?\nA:",
    "The chief executive officer of Nokia is",
    "Nokia is headed by",
    "Q: Who is the CEO of N/A?\nA:",
    "Q: Where is Acme Corp based?\nA:",
]


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, process CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(threads: Sequence[int], rounds: int) -> dict[str, Any]:
    """Median wall and CPU milliseconds of one ask's generate and embed at each thread count."""
    import torch

    from agent.config import BUNDLED_MODEL
    from memory import SentenceTransformerEmbedder
    from tools.lm import HFLanguageModel

    lm = HFLanguageModel.load(BUNDLED_MODEL, device="cpu")
    embedder = SentenceTransformerEmbedder(device="cpu")
    runs: dict[int, dict[str, list[float]]] = {n: {} for n in threads}
    lm.generate(PROMPTS, max_new_tokens=12)  # warm-up: first-call allocations
    for _ in range(rounds):
        for n in threads:
            torch.set_num_threads(n)
            for name, fn in (
                ("generate", lambda: lm.generate(PROMPTS, max_new_tokens=12)),
                ("embed", lambda: embedder.embed(["Who is the CEO of Nokia?"])),
            ):
                wall, cpu = _timed(fn)
                runs[n].setdefault(f"{name}_wall_ms", []).append(wall * 1000)
                runs[n].setdefault(f"{name}_cpu_ms", []).append(cpu * 1000)
    return {
        "rounds": rounds,
        "cores": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "threads": {str(n): {k: round(statistics.median(v), 1) for k, v in runs[n].items()} for n in threads},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = measure([int(t) for t in args.threads.split(",")], args.rounds)
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
