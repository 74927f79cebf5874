"""Fixtures of the server tests: a home with the small world loaded, API keys, and uvicorn on loopback.

The agent is built from the session's MiniLM and GPT-2 (loaded once); each server gets its own copy of
the loaded home, so tests never see each other's writes unless they share a server on purpose.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent import Agent, PolicyThresholds
from agent.config import Home, open_home
from agent.server import ApiKey, KeyRing
from agent.server._app import create_app, service_settings
from agent.server._jobs import AuditRunner, JobProgress
from agent.server._live import serve_in_thread
from agent.server._schemas import AuditRequest
from agent.tell import TellPipeline
from agent.wiring import open_working_memory
from tests.agent.conftest import gpt2, loaded_home, small_world  # noqa: F401 -- shared fixtures

KEYS = {
    "alice": ApiKey(key="key-alice-0001", user="alice", role="editor", namespaces=("alice",), shared=("world",)),
    "bob": ApiKey(key="key-bob-000002", user="bob", role="editor", namespaces=("bob",), shared=("world",)),
    "rita": ApiKey(key="key-rita-00003", user="rita", role="reader", namespaces=("rita",), shared=("alice", "world")),
    "root": ApiKey(
        key="key-root-00004",
        user="root",
        role="admin",
        namespaces=("admin",),
        shared_write=("alice", "bob"),
        shared=("world",),
    ),
    "slow": ApiKey(key="key-slow-00005", user="slow", role="reader", namespaces=("slow",), requests_per_minute=3),
    **{
        f"load{i}": ApiKey(key=f"key-load-{i:04d}", user=f"load{i}", role="editor", namespaces=(f"load{i}",))
        for i in range(8)
    },
}
CONFIG = """
[tell]
edits_per_minute = 0

[server]
requests_per_minute = 0
max_body_bytes = 4096
"""


def key(name: str) -> str:
    return str(KEYS[name].key)


def fake_audit(request: AuditRequest, out_dir: Path, progress: JobProgress) -> dict[str, dict[str, float]]:
    """A stand-in audit runner (the real one loads a second model): each setup answers ``limit`` questions."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for setup in request.setups:
        progress.start(setup, request.limit or 1, 0)
        progress.advance(setup, request.limit or 1)
    return {setup: {"accuracy": 0.5, "hallucination_rate": 0.25} for setup in request.setups}


@dataclass
class Served:
    """A running server: its base URL, home and agent."""

    url: str
    home: Home
    agent: Agent


def _agent(home: Home, minilm: Any, lm: Any) -> Agent:
    settings = service_settings(home.settings, KeyRing(KEYS.values()).users)
    wm = open_working_memory(home, embedder=minilm)
    wm.refresh_entities()
    tell = TellPipeline.open(wm, settings)
    return Agent(wm, lm, thresholds=PolicyThresholds(), tell=tell)


@pytest.fixture(scope="session")
def serve(
    tmp_path_factory: pytest.TempPathFactory,
    loaded_home: Path,  # noqa: F811
    minilm: Any,
    gpt2: Any,  # noqa: F811
) -> Callable[..., AbstractContextManager[Served]]:
    """A factory: ``with serve() as s`` runs a fresh server; ``serve(root)`` reuses a home (a restart)."""

    @contextmanager
    def run(root: Path | None = None, runner: AuditRunner = fake_audit) -> Iterator[Served]:
        if root is None:
            root = tmp_path_factory.mktemp("server") / "home"
            shutil.copytree(loaded_home, root)
            (root / "config.toml").write_text(CONFIG, encoding="utf-8")
        home = open_home(root)
        agent = _agent(home, minilm, gpt2)
        try:
            app = create_app(home, agent=agent, keys=KeyRing(KEYS.values()), audit_runner=runner)
            with serve_in_thread(app) as url:
                yield Served(url, home, agent)
        finally:
            agent.close()

    return run


@pytest.fixture(scope="module")
def server(serve: Callable[..., AbstractContextManager[Served]]) -> Iterator[Served]:
    """One server shared by a test module."""
    with serve() as served:
        yield served
