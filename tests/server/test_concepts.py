"""Concept definitions over the service: asked from the KG, told by admins, quarantined for others, rolled back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent import Agent
from agent.client import FactagentClient
from agent.config import Home, open_home
from agent.server import ApiKey, KeyRing, Principal
from agent.server._app import create_app, service_settings
from agent.server._live import serve_in_thread
from agent.server._service import Service
from agent.wiring import open_working_memory
from eval.world import World
from eval.world._load_memory import load_world_into
from tools.errors import PermissionDeniedError

ALICE = Principal("alice", "editor", ("alice",), shared=("world",))
ROOT = Principal("root", "admin", ("admin",), shared=("world",))
CITY = "a large town where many people live and work"
COUNTRY = "a nation with its own territory and government"


def test_the_service_asks_tells_and_rolls_back_concept_definitions(
    tmp_path: Path, small_world: World, bundled_world: World, gpt2: Any, minilm: Any
) -> None:
    home = open_home(tmp_path)
    with open_working_memory(home, embedder=minilm) as wm:
        load_world_into(replace(small_world, concepts=bundled_world.concepts), wm.db, wm.memory, wm.graph)
    settings = service_settings(home.settings, {"root": "admin", "alice": "editor"})
    agent = Agent.open(Home(root=home.root, settings=settings), gpt2)
    service = Service(agent, ask_batch=4, ask_wait_s=0.0)
    try:
        assert service.ask(ALICE, "What is a city?").text == CITY
        assert service.is_statement(ALICE, f"A city is {COUNTRY}.")
        assert service.tell(ALICE, f"A city is {COUNTRY}.").status == "quarantined"  # not trusted
        told = service.tell(ROOT, f"A city is {COUNTRY}.")
        assert told.status == "applied" and told.edit_id
        answers = [service.ask_later(ALICE, q) for q in ("What is a city?", "Is Armenia a city?")]
        assert [a.result().text for a in answers] == [COUNTRY, "yes"]
        with pytest.raises(PermissionDeniedError):
            service.rollback(ALICE, told.edit_id)
        service.rollback(ROOT, told.edit_id)
        assert service.ask(ALICE, "What is a city?").text == CITY
    finally:
        service.close()
        agent.close()


def test_a_trusted_non_admin_rolls_back_their_own_definition_over_http(
    tmp_path: Path, small_world: World, bundled_world: World, gpt2: Any, minilm: Any
) -> None:
    """A definition lives in the shared ``world`` namespace, which editors do not write; its trusted author may
    still undo it (as their own fact in their namespace), another user may not, whatever their trust."""
    (tmp_path / "config.toml").write_text('[tell]\nroles = { alice = "trusted", bob = "trusted" }\n')
    home = open_home(tmp_path)
    with open_working_memory(home, embedder=minilm) as wm:
        load_world_into(replace(small_world, concepts=bundled_world.concepts), wm.db, wm.memory, wm.graph)
    keys = KeyRing(
        ApiKey(key=f"key-{name}-000{i}", user=name, role="editor", namespaces=(name,), shared=("world",))
        for i, name in enumerate(("alice", "bob"))
    )
    agent = Agent.open(Home(root=home.root, settings=service_settings(home.settings, keys.users)), gpt2)
    try:
        app = create_app(home, agent=agent, keys=keys)
        with (
            serve_in_thread(app) as url,
            FactagentClient(url, "key-alice-0000", timeout=60) as alice,
            FactagentClient(url, "key-bob-0001", timeout=60) as bob,
        ):
            told = alice.tell(f"A city is {COUNTRY}.")
            assert told.status == "applied" and told.edit_id
            assert alice.ask("What is a city?").text == COUNTRY
            with pytest.raises(PermissionDeniedError):
                bob.rollback(told.edit_id)  # trusted too, but not its author: the admins' to undo
            assert alice.rollback(told.edit_id).edit_id == told.edit_id
            assert bob.ask("What is a city?").text == CITY
    finally:
        agent.close()
