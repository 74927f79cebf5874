"""The composition root (``agent.wiring``): every entry point builds its stack there, from one home's settings."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent import Agent
from agent.config import CONFIG_FILE, Home, open_home
from tests.conftest import REPO

ENDPOINT = (
    '[endpoint]\nbase_url = "http://home.invalid/v1"\nmodel = "home-llm"\napi_key_env = "FACTAGENT_WIRING_KEY"\n'
    "timeout = 7\nmax_retries = 2\n"
)


@pytest.fixture
def home(tmp_path: Path, tiny_model_dir: Path, minilm: Any, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A home on the tiny model with thresholds of its own; the session's MiniLM stands in for a fresh load."""
    import memory

    monkeypatch.setattr(memory, "SentenceTransformerEmbedder", lambda *a, **k: minilm)
    (tmp_path / CONFIG_FILE).write_text(
        f'[model]\npath = "{tiny_model_dir}"\n[policy]\nmodel = 0.37\nmemory = 0.41\n', encoding="utf-8"
    )
    return open_home(tmp_path)


def _stack(agent: Agent) -> dict[str, Any]:
    """What an agent was built from: model, thresholds, storage, guard, concept desk and tell pipeline."""
    tell = agent._tell
    return {
        "model": (type(agent.lm).__name__, agent.lm.name),
        "thresholds": agent.thresholds,
        "database": agent.wm.db.path,
        "storage": (type(agent.wm.store).__name__, type(agent.wm.memory).__name__),
        "guard": type(agent.guard).__name__,
        "concepts": type(agent.concepts).__name__,
        "tell": None if tell is None else (type(tell.interpreter).__name__, tell.max_chars, tell.edits_weights),
    }


def test_the_cli_the_server_and_the_audit_get_the_same_stack_for_one_home(home: Home) -> None:
    from agent.server import KeyRing
    from agent.server._app import open_service_agent
    from eval.audit import AuditConfig, build_stack

    cli = Agent.open(home)  # the CLI's and the agent bench's agent
    try:
        opened = _stack(cli)
    finally:
        cli.close()
    served = open_service_agent(home, KeyRing([]))  # no admin keys: the same settings
    try:
        assert _stack(served) == opened
        assert getattr(served.lm, "runtime", None) == "lean"  # serving (tell included) stays lean
    finally:
        served.close()
    assert opened["model"][0] == "LeanLanguageModel" and opened["thresholds"].model == 0.37
    assert opened["guard"] == "EmbeddingJudge" and opened["tell"] is not None
    # the audit's agent setup (local engine and Ray workers alike): the same model, thresholds and memory, read-only
    config = AuditConfig(dataset="world:test", setups=("agent",), home=str(home.root), prepare_memory=False)
    with build_stack(config) as stack:
        audited = _stack(stack.setups["agent"]._asker)  # type: ignore[attr-defined]
    same = ("model", "thresholds", "database", "storage")
    assert {k: audited[k] for k in same} == {k: opened[k] for k in same}
    assert audited["tell"] is None


def test_every_endpoint_model_is_built_from_the_settings_in_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tools.lm
    from agent.wiring import llm_interpreter
    from eval.audit import AuditConfig, build_stack
    from kg import load_schema

    built: list[tuple[Any, ...]] = []

    class Recorded:
        def __init__(self, base_url: str, model: str, api_key: str | None = None, **kw: Any) -> None:
            built.append((base_url, model, api_key, kw["timeout"], kw["max_retries"]))
            self.name = model

        def close(self) -> None:
            pass

    monkeypatch.setattr(tools.lm, "OpenAIChatModel", Recorded)
    monkeypatch.setenv("FACTAGENT_WIRING_KEY", "sk-wiring")
    (tmp_path / CONFIG_FILE).write_text(ENDPOINT, encoding="utf-8")
    home = open_home(tmp_path)
    wm = SimpleNamespace(graph=SimpleNamespace(schema=load_schema()), entities=None)
    llm_interpreter(home.settings, wm)  # type: ignore[arg-type]  # the tell pipeline's LLM interpreter
    config = AuditConfig(dataset="questions.jsonl", setups=("openai:http://peer.invalid/v1#peer",), grader="llm",
                         home=str(tmp_path))  # fmt: skip
    with build_stack(config):  # an endpoint setup and the LLM judge (the home's [endpoint])
        pass
    home_llm = ("http://home.invalid/v1", "home-llm", "sk-wiring", 7, 2)
    assert built == [home_llm, ("http://peer.invalid/v1", "peer", "sk-wiring", 7, 2), home_llm]


BUILT_BY_THE_ROOT = {"Agent", "TellPipeline", "HybridRetriever", "VectorMemory", "OpenAIChatModel",
                     "ServedLanguageModel"}  # fmt: skip


def _called(func: ast.expr) -> str:
    """The name a call calls (``X(...)`` or ``mod.X(...)``)."""
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def test_only_the_composition_root_constructs_the_stacks_parts() -> None:
    found = []
    for package in ("agent", "eval"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path.parent == REPO / "agent" / "wiring":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and _called(node.func) in BUILT_BY_THE_ROOT:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {_called(node.func)}")
    assert found == []
