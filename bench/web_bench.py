"""Web app first-render times (issue 26): every page of ``/ui`` with ``--facts`` facts in memory.

A home gets ``--facts`` synthetic facts (``The CEO of Bench Company <i> is Person <i>.``, each a memory
item and a KG assertion in the shared ``world`` namespace), a few told edits, one held statement and two
finished audit jobs; ``factagent serve``'s app runs under uvicorn on loopback. Each page is fetched once
cold (its first render) and then ``--repeat`` times; the time is the loopback wall time of the whole
response (the server's render plus a loopback transfer), so an upper bound of the server-side time. The
ask is listed apart: it runs the model.

Example:
    PYTHONPATH=. .venv/bin/python bench/web_bench.py --facts 10000
    # a Markdown table on stdout: page, first render (ms), median of the repeats (ms), status, size
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.server_load import _prepare_home

TARGET_MS = 300.0
KEYS = """
[[keys]]
key = "bench-web-alice"
user = "alice"
role = "editor"
namespaces = ["alice"]
shared = ["world"]

[[keys]]
key = "bench-web-mallory"
user = "mallory"
role = "editor"
namespaces = ["mallory"]
shared = ["world"]

[[keys]]
key = "bench-web-root"
user = "root"
role = "admin"
namespaces = ["admin"]
shared_write = ["alice", "mallory"]
shared = ["world"]
"""


def _add_facts(root: Path, n: int, batch: int = 500) -> None:
    """``n`` synthetic facts in ``world``: memory items (embedded) and KG assertions, batch by batch."""
    from tqdm import tqdm

    from agent.config import open_home
    from agent.wiring import open_working_memory
    from kg import Provenance
    from memory import Scope, Triple

    with open_working_memory(open_home(root)) as wm, tqdm(total=n, desc="facts", file=sys.stderr) as bar:
        for start in range(0, n, batch):
            ids = range(start, min(n, start + batch))
            triples = [Triple(f"Bench Company {i}", "company_ceo", f"Person {i}") for i in ids]
            with wm.db.transaction():
                wm.memory.add_many(
                    [f"The CEO of {t.subject} is {t.object}." for t in triples],
                    scope=Scope(agent_id="world"),
                    triples=triples,
                    sources=[f"bench:{i}" for i in ids],
                )
                wm.graph.add_many(
                    (t, Provenance(who="bench", source=f"bench:{i}")) for t, i in zip(triples, ids, strict=True)
                )
            bar.update(len(triples))


def _stub_audit(request: object, out_dir: Path, progress: object) -> dict[str, dict[str, float]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.html").write_text("<html><body><h1>stub report</h1></body></html>", encoding="utf-8")
    return {"standalone": {"accuracy": 0.5, "hallucination_rate": 0.25}}


def _client(url: str, api_key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=600)
    pre = re.search(r'name="pre" value="([^"]+)"', client.get("/ui/signin").text)
    assert pre is not None
    signed = client.post("/ui/signin", data={"key": api_key, "pre": pre.group(1)})
    assert signed.status_code == 303, signed.text
    return client


def _token(client: httpx.Client) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/chat").text)
    assert found is not None
    return found.group(1)


def _setup(url: str) -> tuple[httpx.Client, httpx.Client, dict[str, str]]:
    """Told edits, one held statement, two audits; the ids the pages need."""
    alice, root = _client(url, "bench-web-alice"), _client(url, "bench-web-root")
    edit = ""
    for i in range(10):
        told = alice.post("/ui/chat/tell", data={"statement": f"The CEO of Bench Company {i} is Told {i}.",
                                                 "csrf": _token(alice)})  # fmt: skip
        found = re.search(r'data-testid="tell-edit">edit ([^<]+)<', told.text)
        edit = found.group(1) if found else edit
    mallory = httpx.Client(base_url=url, timeout=600, headers={"Authorization": "Bearer bench-web-mallory"})
    mallory.post("/v1/tell", json={"statement": "The CEO of Bench Company 20 is Mal Ory."}).raise_for_status()
    jobs = []
    for _ in range(2):
        r = alice.post("/ui/audits", data={"limit": 5, "csrf": _token(alice)})
        jobs.append(r.headers["location"].rsplit("/", 1)[1])
    time.sleep(1.0)
    fact = re.search(r'href="/ui/facts/(m-[0-9a-f]{16})"', alice.get("/ui/memory?q=Bench+Company+5").text)
    assert fact is not None and edit
    return alice, root, {"edit": edit, "fact": fact.group(1), "a": jobs[0], "b": jobs[1]}


def measure(url: str, repeat: int) -> list[tuple[str, float, float, int, int]]:
    """(page, first ms, median ms, status, bytes) per page."""
    alice, root, ids = _setup(url)
    pages = [
        (alice, "/ui/signin"), (alice, "/ui/chat"), (alice, "/ui/memory"),
        (alice, "/ui/memory?page=100"), (alice, "/ui/memory?q=Bench+Company+42"),
        (alice, "/ui/memory?subject=Bench+Company+42"),
        (alice, "/ui/memory?relation=company_ceo&as_of=2020-01-01T00:00"),
        (alice, f"/ui/facts/{ids['fact']}"), (alice, "/ui/history?subject=Bench+Company+3"),
        (alice, "/ui/edits"), (alice, f"/ui/edits/{ids['edit']}"), (alice, f"/ui/edits/{ids['edit']}/rollback"),
        (root, "/ui/quarantine"), (alice, "/ui/audits"), (alice, f"/ui/audits/{ids['a']}"),
        (alice, f"/ui/audits/{ids['a']}/report"), (alice, f"/ui/audits/compare?a={ids['a']}&b={ids['b']}"),
    ]  # fmt: skip
    rows = []
    for client, path in pages:
        times = []
        for _ in range(1 + repeat):
            t0 = time.perf_counter()
            r = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append(
            (path, times[0], statistics.median(times[1:]) if repeat else times[0], r.status_code, len(r.content))
        )
    asks = []
    for i in range(1 + repeat):
        t0 = time.perf_counter()
        r = alice.post(
            "/ui/chat/ask", data={"question": f"Who is the CEO of Bench Company {100 + i}?", "csrf": _token(alice)}
        )
        asks.append((time.perf_counter() - t0) * 1000)
    rows.append(("POST /ui/chat/ask (runs the model)", asks[0], statistics.median(asks[1:]) if repeat else asks[0],
                 r.status_code, len(r.content)))  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--facts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="fetches after the first, for the median")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from agent.config import open_home
    from agent.server import create_app
    from agent.server._live import serve_in_thread

    root = Path(tempfile.mkdtemp(prefix="factagent-web-"))
    try:
        _prepare_home(root, 0)
        (root / "config.toml").write_text(
            '[tell]\nedits_per_minute = 0\nroles = { mallory = "untrusted" }\n\n[server]\nrequests_per_minute = 0\n'
        )
        (root / "server" / "keys.toml").write_text(KEYS)
        _add_facts(root, args.facts)
        with serve_in_thread(create_app(open_home(root), audit_runner=_stub_audit)) as url:
            rows = measure(url, args.repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out = sys.stdout
    out.write(f"{args.facts} facts in memory; times in ms on loopback (target: first render <= {TARGET_MS:.0f} ms)\n\n")
    out.write("| page | first render | median of next | status | bytes |\n|---|---:|---:|---:|---:|\n")
    for path, first, median, status, size in rows:
        out.write(f"| `{path}` | {first:.0f} | {median:.0f} | {status} | {size} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
