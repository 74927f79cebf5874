"""Where a server's startup goes (issue 16, item 8): imports, each part of the stack, the first answer.

Runs in one fresh process, timing each phase of what ``factagent serve`` does before its first answer:
importing the server and the ML libraries, opening the home, the database, the embedder, the entity and
relation linkers, the language model, the tell pipeline, building the app, and the first ``/v1/ask`` (which
also pays for lazy first-use work). ``--process`` instead times ``factagent serve`` as a user starts it:
spawn to ``/v1/health``, and to the first answer.

Example:
    PYTHONPATH=. .venv/bin/python bench/server_startup.py --home ~/.factagent
    PYTHONPATH=. .venv/bin/python bench/server_startup.py --home ~/.factagent --process
    # one JSON object on stdout: seconds per phase
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUESTION = "Who is the CEO of Nokia?"


def phases(home: Path) -> dict[str, float]:
    """Seconds per startup phase, in this (fresh) process."""
    out: dict[str, float] = {}
    t = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        out[name] = round(now - t, 3)
        t = now

    import agent.cli as _cli  # noqa: F401

    mark("import agent.cli")
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401

    mark("import fastapi + uvicorn")
    import torch  # noqa: F401

    mark("import torch")
    import transformers  # noqa: F401

    mark("import transformers")
    from agent.config import open_home
    from agent.server import KeyRing, keys_path
    from agent.server._app import service_settings

    home_obj = open_home(home)
    keys = KeyRing.load(keys_path(home_obj))
    mark("open home + keys")
    from agent.wiring import load_embedder

    embedder = load_embedder(home_obj)
    embedder.embed(["warm up"])
    mark("embedder (MiniLM) load + first embed")
    from agent.wiring import open_working_memory

    wm = open_working_memory(home_obj, embedder=embedder)
    mark("working memory (SQLite check, FAISS, entity + relation linkers)")
    from agent.wiring import load_language_model

    lm = load_language_model(home_obj)
    mark("language model (GPT-2 reference)")
    from agent import Agent
    from agent.config import Home
    from agent.tell import TellPipeline
    from agent.wiring import policy_thresholds

    settings = service_settings(home_obj.settings, keys.users)
    served = Home(root=home_obj.root, settings=settings)
    from tools.lm import is_local_model

    tell = TellPipeline.open(wm, settings, lm=lm if is_local_model(lm) else None)
    served_agent = Agent(wm, lm, thresholds=policy_thresholds(served), tell=tell)
    mark("tell pipeline + agent")
    from agent.server import create_app

    app = create_app(home_obj, agent=served_agent, keys=keys)
    mark("create_app")
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        key = next(iter(_keys(home_obj)), None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client.post("/v1/ask", json={"question": QUESTION}, headers=headers)
        mark("first /v1/ask")
        client.post("/v1/ask", json={"question": "Who is the mother of Isaac Newton?"}, headers=headers)
        mark("second /v1/ask")
    served_agent.close()
    out["total_to_first_answer"] = round(sum(v for k, v in out.items() if k != "second /v1/ask"), 3)
    return out


def _keys(home: Any) -> list[str]:
    import tomllib

    from agent.server import keys_path

    path = keys_path(home)
    if not path.exists():
        return []
    return [str(k["key"]) for k in tomllib.loads(path.read_text()).get("keys", []) if "key" in k]


def process(home: Path, port: int) -> dict[str, float]:
    """``factagent serve`` as a user starts it: spawn -> health, spawn -> first answer."""
    import httpx

    from agent.config import open_home

    key = next(iter(_keys(open_home(home))), "")
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                httpx.get(f"{url}/v1/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.perf_counter() - start > 300:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)
        health = time.perf_counter() - start
        httpx.post(
            f"{url}/v1/ask", json={"question": QUESTION}, headers={"Authorization": f"Bearer {key}"}, timeout=300
        )
        first = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(30)
    return {"spawn_to_health_s": round(health, 2), "spawn_to_first_answer_s": round(first, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--process", action="store_true", help="time `factagent serve` end to end instead")
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    row = process(args.home, args.port) if args.process else phases(args.home)
    sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
