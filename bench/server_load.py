"""HTTP API load test (issue 7): concurrent clients send mixed requests to ``factagent serve`` on loopback.

Each of ``--clients`` threads has its own API key and namespace and sends ``--requests`` requests through
:class:`agent.client.FactagentClient`, drawn (seeded) from: ask 25%, search 20%, add fact 20%, read fact
15%, update fact 10%, tell 5%, list edits 5%. Afterwards every fact a client created is read back (its
last written text must be there) and every edit it was told must be in ``/v1/edits``: a "lost" write is
one the server acknowledged and does not have. Latencies are client-side, per request.

Example:
    PYTHONPATH=. .venv/bin/python bench/server_load.py --clients 8 --requests 500
    # one JSON object on stdout: requests, errors, lost, p50_ms, p99_ms, throughput_rps, per-op p50/p99
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.client import FactagentClient
from tools.errors import FactagentError, NotFoundError

OPS = (("ask", 25), ("search", 20), ("add", 20), ("get", 15), ("update", 10), ("tell", 5), ("edits", 5))
QUESTIONS = ("Who is the CEO of Nokia?", "Who is the mother of Isaac Newton?", "Where is Acme Corp based?")


@dataclass
class ClientLog:
    """What one client did: latencies per op, errors, and the writes the server acknowledged."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)  # fact id -> last text written
    edits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    clients: int
    requests: int
    errors: int
    lost: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p99_ms: float
    per_op: dict[str, dict[str, float]]
    error_samples: list[str]


def _one_client(url: str, api_key: str, n: int, seed: int, log: ClientLog) -> None:
    rng = random.Random(seed)
    names, weights = zip(*OPS, strict=True)
    with FactagentClient(url, api_key, timeout=120) as fa:
        for i in range(n):
            op = rng.choices(names, weights)[0]
            if op in ("get", "update") and not log.facts:
                op = "add"
            start = time.perf_counter()
            try:
                if op == "ask":
                    fa.ask(rng.choice(QUESTIONS))
                elif op == "search":
                    fa.search_facts(f"note number {rng.randrange(n)}", k=5)
                elif op == "add":
                    text = f"Load note number {i} of client {seed}."
                    log.facts[fa.add_fact(text).id] = text
                elif op == "get":
                    fa.get_fact(rng.choice(list(log.facts)))
                elif op == "update":
                    fact_id = rng.choice(list(log.facts))
                    text = f"Load note {fact_id} revised at step {i}."
                    fa.update_fact(fact_id, text)
                    log.facts[fact_id] = text
                elif op == "tell":
                    told = fa.tell(f"The CEO of Loadco {seed} {i} is Pat Load{seed}x{i}.")
                    if told.edit_id:
                        log.edits.append(told.edit_id)
                else:
                    fa.edits(limit=20)
            except FactagentError as exc:
                log.errors.append(f"{op}: {type(exc).__name__}: {exc}")
            log.latencies.setdefault(op, []).append(time.perf_counter() - start)


def _lost(url: str, api_key: str, log: ClientLog) -> int:
    lost = 0
    with FactagentClient(url, api_key, timeout=120) as fa:
        for fact_id, text in log.facts.items():
            try:
                lost += fa.get_fact(fact_id).text != text
            except NotFoundError:
                lost += 1
        listed = {e.edit_id for e in fa.edits(limit=500).edits}
        lost += sum(edit_id not in listed for edit_id in log.edits)
    return lost


def run_load(url: str, api_keys: Sequence[str], clients: int = 8, requests: int = 500, seed: int = 0) -> LoadReport:
    """Run ``clients`` threads x ``requests`` mixed requests against ``url``; client ``i`` uses key ``i % len``.

    Give each client its own key (and so namespace) for the loss check to be exact.
    """
    logs = [ClientLog() for _ in range(clients)]
    threads = [
        threading.Thread(
            target=_one_client, args=(url, api_keys[i % len(api_keys)], requests, seed * 1000 + i, logs[i])
        )
        for i in range(clients)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    lost = sum(_lost(url, api_keys[i % len(api_keys)], log) for i, log in enumerate(logs))
    every = np.array([x for log in logs for xs in log.latencies.values() for x in xs]) * 1000
    per_op: dict[str, dict[str, float]] = {}
    for op, _ in OPS:
        xs = np.array([x for log in logs for x in log.latencies.get(op, [])]) * 1000
        if xs.size:
            per_op[op] = {
                "n": int(xs.size),
                "p50_ms": float(np.percentile(xs, 50)),
                "p99_ms": float(np.percentile(xs, 99)),
            }
    errors = [e for log in logs for e in log.errors]
    return LoadReport(
        clients=clients, requests=int(every.size), errors=len(errors), lost=lost, seconds=seconds,
        throughput_rps=every.size / seconds, p50_ms=float(np.percentile(every, 50)),
        p99_ms=float(np.percentile(every, 99)), per_op=per_op, error_samples=errors[:5],
    )  # fmt: skip


def _prepare_home(root: Path, clients: int) -> None:
    """A home with a small world slice loaded and one editor key per client."""
    from agent.config import open_home
    from agent.wiring import open_working_memory
    from eval.world import load_world
    from eval.world._build import subset_world
    from eval.world._load_memory import load_world_into
    from eval.world._pipeline import DATA_DIR

    relations = ("company_ceo", "company_hq", "person_mother", "person_father", "spouse", "notable_work")
    world = subset_world(load_world(DATA_DIR), relations, n_known=7, n_unknown=14)
    with open_working_memory(open_home(root)) as wm:
        load_world_into(world, wm.db, wm.memory, wm.graph)
    (root / "config.toml").write_text("[tell]\nedits_per_minute = 0\n\n[server]\nrequests_per_minute = 0\n")
    keys = "\n".join(
        f'[[keys]]\nkey = "bench-key-{i:04d}"\nuser = "client{i}"\nrole = "editor"\n'
        f'namespaces = ["client{i}"]\nshared = ["world"]\n'
        for i in range(clients)
    )
    (root / "server").mkdir(exist_ok=True)
    (root / "server" / "keys.toml").write_text(keys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="requests per client")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent.config import open_home
    from agent.server import create_app
    from agent.server._live import serve_in_thread

    root = Path(tempfile.mkdtemp(prefix="factagent-load-"))
    try:
        _prepare_home(root, args.clients)
        app = create_app(open_home(root))
        with serve_in_thread(app) as url:
            keys = [f"bench-key-{i:04d}" for i in range(args.clients)]
            report = run_load(url, keys, args.clients, args.requests, args.seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    row: dict[str, Any] = asdict(report)
    sys.stdout.write(json.dumps(row) + "\n")
    sys.stderr.write(
        f"{report.clients} clients x {args.requests}: {report.requests} requests in {report.seconds:.1f} s "
        f"({report.throughput_rps:.1f}/s), p50 {report.p50_ms:.1f} ms, p99 {report.p99_ms:.1f} ms, "
        f"errors {report.errors}, lost {report.lost}\n"
    )
    return 0 if report.lost == 0 and report.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
