"""Reads under asks (issue 16, item 6): how long ``GET /v1/edits``, history and facts wait while asks run.

``--asks`` clients each send one ``POST /v1/ask`` at once; while they are in flight (after ``--settle``
seconds) one client times each read route ``--rounds`` times. Before the readers-writer lock, every read
queued behind every ask on one global lock; now reads wait only for a write.

Example:
    PYTHONPATH=. .venv/bin/python bench/server_reads.py --asks 20
    # one JSON object on stdout: the first read's latency and the slowest read's while asks run (ms), and
    # the asks' wall time
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.server_load import _prepare_home

READS = ("/v1/edits", "/v1/history?subject=Nokia", "/v1/facts/search?q=Nokia")


def measure(url: str, api_key: str, asks: int, rounds: int, settle: float) -> dict[str, Any]:
    """Read latencies while ``asks`` asks are in flight; the asks' wall time."""
    headers = {"Authorization": f"Bearer {api_key}"}
    fact = httpx.post(f"{url}/v1/facts", json={"text": "Reads under load."}, headers=headers, timeout=60).json()
    paths = (*READS, f"/v1/facts/{fact['id']}")
    done: list[float] = []

    def ask() -> None:
        httpx.post(f"{url}/v1/ask", json={"question": "Who is the CEO of Nokia?"}, headers=headers, timeout=600)
        done.append(time.perf_counter())

    threads = [threading.Thread(target=ask) for _ in range(asks)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(settle)
    latencies: list[float] = []
    in_flight: list[int] = []
    for _ in range(rounds):
        for path in paths:
            in_flight.append(asks - len(done))  # asks still running when this read starts
            t0 = time.perf_counter()
            r = httpx.get(f"{url}{path}", headers=headers, timeout=600)
            r.raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
    for t in threads:
        t.join()
    during = sorted(ms for ms, n in zip(latencies, in_flight, strict=True) if n > 0)
    return {
        "asks": asks,
        "reads": len(latencies),
        "first_read_ms": round(latencies[0], 1),
        "asks_in_flight_at_first_read": in_flight[0],
        "reads_during_asks": len(during),
        "read_during_asks_max_ms": round(during[-1], 1) if during else None,
        "read_max_ms": round(max(latencies), 1),
        "asks_wall_s": round(max(done) - start, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=0.5, help="seconds between starting the asks and reading")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent.config import open_home
    from agent.server import create_app
    from agent.server._live import serve_in_thread

    root = Path(tempfile.mkdtemp(prefix="factagent-reads-"))
    try:
        _prepare_home(root, 1)
        with serve_in_thread(create_app(open_home(root))) as url:
            row = measure(url, "bench-key-0000", args.asks, args.rounds, args.settle)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
