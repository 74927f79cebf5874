"""Asks under load (issue 30, part 6): ``/v1/ask`` at 1, 8 and 32 concurrent clients, mixed with reads and tells.

Each service mode runs as its own ``factagent serve`` child process on loopback (its own copy of one
prepared home: a small world slice loaded, one editor key per client), so the clients' threads here never
compete with the server for its interpreter lock. Modes (side by side in one run, so other processes'
load falls on all of them alike):

- ``one_at_a_time``: this tree with ``[server] ask_batch = 1`` (each ask alone, as the service did before
  cross-request batching);
- ``batched``: this tree with the shipped defaults (micro-batches of up to 16 asks, 5 ms gathering);
- ``baseline``: with ``--baseline-src DIR``, the service of another source tree (e.g. the main branch);
- ``served_one_at_a_time`` / ``served_batched``: with ``--served llama`` (or ``transformers``), the same two
  settings over a real OpenAI-compatible server on loopback serving the reference GPT-2
  (:mod:`bench.inference_servers`: llama.cpp's server on the GGUF ``.ci/llama_server.sh`` converted, one
  thread; started once, the served modes take turns on it) as ``[model] backend = "openai"``. The policy
  is the shipped ``[policy]`` (no thresholds calibrated for the served model: this measures load, not
  accuracy).

``--modes`` keeps only the named modes (e.g. ``--modes batched,served_batched``).

For each client count and mode, for ``--seconds``: ``N`` clients send asks back to back (drawn from the
world's questions), one reader sends ``GET`` requests (edits, history, a fact, a search) every 20 ms, and
one writer tells a new fact every second. The seconds are split into ``--rounds`` slices run mode after
mode in turn, so that a change in the machine's load (other processes) falls on every mode alike. Reported
per cell: ask throughput and p50 / p99, read p50 / p99 (while the asks run), tell p50 / p99, errors, and
the 1-minute load average at the end of the cell.

Before any server starts, ``--floor-rounds`` passes of one ask at a time on an idle process are timed
against their floor (:mod:`bench.ask_floor`: one batched ``generate`` of the same prompts + one query
embedding).

Example:
    PYTHONPATH=. .venv/bin/python bench/ask_load.py --clients 1,8,32 --seconds 20 --rounds 4
    PYTHONPATH=. .venv/bin/python bench/ask_load.py --served llama --modes batched,served_one_at_a_time,served_batched
    # one JSON object per cell on stdout, then a Markdown table on stderr
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.server_load import _prepare_home

QUESTIONS = (
    "Who is the CEO of Nokia?",
    "Who is the mother of Isaac Newton?",
    "Where is Acme Corp based?",
    "Who is the CEO of Qantas?",
    "Who is the father of Marie Curie?",
    "Which university did Pivae Rolvrind attend?",
    "Who is the spouse of Barack Obama?",
    "Where is the headquarters of Siemens?",
)
MAX_CLIENTS = 64


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """One ``factagent serve`` process on a copy of the prepared home."""

    def __init__(self, name: str, home: Path, src: Path, log: Path) -> None:
        self.name = name
        self.port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
        self._log = log.open("w")
        cmd = [sys.executable, "-m", "agent", "--home", str(home), "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, cwd=src, stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not start within {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def _pcts(xs: list[float]) -> dict[str, float | int]:
    if not xs:
        return {"n": 0}
    a = np.array(xs) * 1000
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 1),
        "p99_ms": round(float(np.percentile(a, 99)), 1),
    }


@dataclass
class Cell:
    """What one mode did at one client count: latencies in seconds, over ``wall`` seconds in all."""

    clients: int
    wall: float = 0.0
    asks: list[float] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    tells: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    served: list[int] = field(default_factory=lambda: [0, 0])  # asks and micro-batches the server counted

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.wall, 1),
            "asks_per_s": round(len(self.asks) / self.wall, 2) if self.wall else 0.0,
            "ask": _pcts(self.asks),
            "read": _pcts(self.reads),
            "tell": _pcts(self.tells),
            "asks_per_batch": round(self.served[0] / self.served[1], 2) if self.served[1] else None,
            "errors": len(self.errors),
            "error_samples": self.errors[:3],
            "load_avg_1m": round(os.getloadavg()[0], 1),
        }


def _record(response: httpx.Response, seconds: float, latencies: list[float], errors: list[str]) -> None:
    if response.status_code == 200:
        latencies.append(seconds)
    else:
        errors.append(response.text[:80])


def run_cell(url: str, clients: int, seconds: float, tag: str, into: Cell | None = None) -> Cell:
    """``clients`` askers, one reader and one teller against ``url`` for ``seconds`` (added to ``into``)."""
    stop = threading.Event()
    asks: list[float] = []
    reads: list[float] = []
    tells: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def asker(i: int) -> None:
        headers = {"Authorization": f"Bearer bench-key-{i:04d}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            n = 0
            while not stop.is_set():
                q = QUESTIONS[(i + n) % len(QUESTIONS)]
                n += 1
                t0 = time.perf_counter()
                r = c.post("/v1/ask", json={"question": q})
                dt = time.perf_counter() - t0
                with lock:
                    _record(r, dt, asks, errors)

    def reader() -> None:
        headers = {"Authorization": f"Bearer bench-key-{MAX_CLIENTS - 1:04d}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            fact = c.post("/v1/facts", json={"text": f"Reader note {tag}."}).json()["id"]
            paths = ("/v1/edits?limit=20", "/v1/history?subject=Nokia", f"/v1/facts/{fact}", "/v1/facts/search?q=Nokia")
            n = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                r = c.get(paths[n % len(paths)])
                dt = time.perf_counter() - t0
                n += 1
                with lock:
                    _record(r, dt, reads, errors)
                time.sleep(0.02)

    def teller() -> None:
        headers = {"Authorization": f"Bearer bench-key-{MAX_CLIENTS - 2:04d}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as c:
            n = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                r = c.post("/v1/tell", json={"statement": f"The CEO of Loadco {tag} {n} is Pat Load{n}."})
                dt = time.perf_counter() - t0
                n += 1
                with lock:
                    _record(r, dt, tells, errors)
                stop.wait(1.0)

    threads = [threading.Thread(target=asker, args=(i,)) for i in range(clients)]
    threads += [threading.Thread(target=reader), threading.Thread(target=teller)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(600)
    cell = into if into is not None else Cell(clients)
    cell.wall += time.perf_counter() - start
    cell.asks += asks
    cell.reads += reads
    cell.tells += tells
    cell.errors += errors
    return cell


def _served(url: str) -> tuple[int, int]:
    """Asks and micro-batches the server has counted (``/v1/metrics``; zeros where it counts none)."""
    r = httpx.get(f"{url}/v1/metrics", params={"format": "json"}, headers={"Authorization": "Bearer bench-key-0000"})
    try:
        work = r.json().get("work") if r.status_code == 200 else None
    except ValueError:  # a service without the JSON metrics
        work = None
    return (int(work["asks"]), int(work["batches"])) if work else (0, 0)


@dataclass(frozen=True)
class Mode:
    """One service to measure: a source tree and its ``[server]`` batching (None: the defaults)."""

    name: str
    src: Path
    batch: int | None = None
    expect_ms: float | None = None
    endpoint: str | None = None  # "BASE_URL MODEL": answer with this OpenAI-compatible server


def _config(batch: int | None, expect_ms: float | None = None, endpoint: str | None = None) -> str:
    text = "[tell]\nedits_per_minute = 0\n\n[server]\nrequests_per_minute = 0\n"
    text += f"ask_batch = {batch}\n" if batch is not None else ""
    text += f"ask_expect_ms = {expect_ms}\n" if expect_ms is not None else ""
    if endpoint is not None:
        base_url, model = endpoint.split(" ", 1)
        text += f'\n[model]\nbackend = "openai"\n\n[endpoint]\nbase_url = "{base_url}"\nmodel = "{model}"\n'
    return text


def _modes(here: Path, baseline: Path | None, endpoint: str | None, keep: str | None) -> list[Mode]:
    modes = [
        Mode("one_at_a_time", here, batch=1),
        Mode("batched_fixed_window", here, expect_ms=0.0),  # the gathering window alone (no expected company)
        Mode("batched", here),
    ]
    if baseline is not None:
        modes.insert(0, Mode("baseline", baseline.resolve()))
    if endpoint is not None:
        modes += [
            Mode("served_one_at_a_time", here, batch=1, endpoint=endpoint),
            Mode("served_batched", here, endpoint=endpoint),
        ]
    if keep is None:
        return modes
    names = keep.split(",")
    unknown = sorted(set(names) - {m.name for m in modes})
    if unknown:
        raise ValueError(f"unknown or unavailable modes: {', '.join(unknown)}")
    return [m for m in modes if m.name in names]


@contextmanager
def _endpoint(kind: str | None) -> Iterator[str | None]:
    """The served modes' server ("BASE_URL MODEL"), running for the block; None without ``--served``."""
    if kind is None:
        yield None
        return
    from bench.inference_servers import cached_gguf, llama_server, transformers_server

    if kind == "llama":
        gguf = cached_gguf()
        if gguf is None:
            raise RuntimeError("no converted GGUF: run `bash .ci/llama_server.sh .venv/bin/python` first")
        server = llama_server(gguf)
    else:
        server = transformers_server()
    with server as srv:
        yield f"{srv.base_url} {srv.model}"


def _measure(
    modes: Sequence[Mode], levels: Sequence[int], seconds: float, rounds: int, floor_rounds: int
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Serve every mode from a copy of one prepared home; each client count's cells, the modes taking turns."""
    root = Path(tempfile.mkdtemp(prefix="factagent-askload-"))
    children: list[Child] = []
    rows: list[dict[str, Any]] = []
    floor: dict[str, Any] | None = None
    try:
        _prepare_home(root / "prepared", MAX_CLIENTS)
        if floor_rounds:
            from bench.ask_floor import idle_ask_vs_floor

            shutil.copytree(root / "prepared", root / "idle")
            floor = {"mode": "idle_one_ask", **idle_ask_vs_floor(root / "idle", QUESTIONS, floor_rounds)}
            sys.stdout.write(json.dumps(floor) + "\n")
            sys.stdout.flush()
        for mode in modes:
            home = root / mode.name
            shutil.copytree(root / "prepared", home)
            (home / "config.toml").write_text(_config(mode.batch, mode.expect_ms, mode.endpoint))
            children.append(Child(mode.name, home, mode.src, root / f"{mode.name}.log"))
        for child in children:
            child.wait_ready()
            httpx.post(
                f"{child.url}/v1/ask",
                json={"question": QUESTIONS[0]},
                headers={"Authorization": "Bearer bench-key-0000"},
                timeout=300,
            )  # fmt: skip  (first-use work)
        for clients in levels:
            cells = {child.name: Cell(clients) for child in children}
            for turn in range(rounds):
                for child in children:
                    tag = f"{child.name}{clients}r{turn}"
                    before = _served(child.url)
                    run_cell(child.url, clients, seconds / rounds, tag, cells[child.name])
                    after = _served(child.url)
                    served = cells[child.name].served
                    served[0] += after[0] - before[0]
                    served[1] += after[1] - before[1]
            for child in children:
                row = {"mode": child.name, **cells[child.name].summary()}
                rows.append(row)
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
    finally:
        for child in children:
            child.stop()
        shutil.rmtree(root, ignore_errors=True)
    return rows, floor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", default="1,8,32", help="comma-separated concurrent ask clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="per cell")
    parser.add_argument("--rounds", type=int, default=1, help="slices of each cell, the modes taking turns")
    parser.add_argument("--floor-rounds", type=int, default=3, help="idle asks vs their floor (0: skip)")
    parser.add_argument("--baseline-src", type=Path, default=None, help="also serve this source tree as 'baseline'")
    parser.add_argument("--served", choices=["llama", "transformers"], default=None, help="add the served modes")
    parser.add_argument("--modes", default=None, help="comma-separated modes to keep (default: all)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.clients.split(",")]
    if max(levels) > MAX_CLIENTS - 2:
        parser.error(f"at most {MAX_CLIENTS - 2} clients")
    if args.rounds < 1 or args.floor_rounds < 0:
        parser.error("--rounds must be >= 1 and --floor-rounds >= 0")
    here = Path(__file__).resolve().parents[1]
    with _endpoint(args.served) as endpoint:
        try:
            modes = _modes(here, args.baseline_src, endpoint, args.modes)
        except ValueError as err:
            parser.error(str(err))
        rows, floor = _measure(modes, levels, args.seconds, args.rounds, args.floor_rounds)
    head = ("mode", "clients", "asks/s", "ask p50 ms", "ask p99 ms", "read p50 ms", "read p99 ms", "tell p99 ms")
    sys.stderr.write("| " + " | ".join((*head, "errors", "load")) + " |\n")
    sys.stderr.write("|---|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        sys.stderr.write(
            f"| {r['mode']} | {r['clients']} | {r['asks_per_s']} | {r['ask'].get('p50_ms')} | {r['ask'].get('p99_ms')} "
            f"| {r['read'].get('p50_ms')} | {r['read'].get('p99_ms')} | {r['tell'].get('p99_ms')} | {r['errors']} "
            f"| {r['load_avg_1m']} |\n"
        )
    if floor is not None:
        sys.stderr.write(
            f"\none ask on an idle process: p50 {floor['ask_p50_ms']} ms vs floor {floor['floor_p50_ms']} ms "
            f"(generate {floor['generate_p50_ms']} + embed {floor['embed_p50_ms']}) = {floor['ask_over_floor']}x\n"
            f"  vs the floor of the prompts it sent ({floor['prompts_sent_per_ask']} of {floor['prompts_per_ask']} a "
            f"question): {floor['floor_sent_p50_ms']} ms = {floor['ask_over_floor_sent']}x\n"
            f"  vs its own model calls replayed (score + generate) + embed: {floor['floor_calls_p50_ms']} ms = "
            f"{floor['ask_over_floor_calls']}x\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
