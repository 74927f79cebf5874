"""``factagent mcp --http`` behind the HTTP API's keys (issue 16, item 7): 401 without one, each call as its key."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from agent.server import KeyRing, mcp_http_app
from agent.server._app import create_app
from agent.server._live import serve_in_thread
from agent.server._service import Service
from tests.server.conftest import KEYS, Served, key


def _text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def _calls(url: str, api_key: str, calls: list[tuple[str, dict[str, Any]]]) -> list[CallToolResult]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}, timeout=60)
    out = []
    async with (
        http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for name, args in calls:
            out.append(await session.call_tool(name, args))
    return out


def test_mcp_over_http_needs_a_key_and_acts_as_its_principal(server: Served) -> None:
    app = mcp_http_app(Service(server.agent), KeyRing(KEYS.values()))
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    with serve_in_thread(app) as url:
        for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"X-API-Key": "nope"}):
            r = httpx.post(f"{url}/mcp", json=init, headers=headers)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        told, mine = asyncio.run(
            _calls(
                url,
                key("alice"),
                [
                    ("remember", {"statement": "The CEO of Keyed Labs is Ivo Pell."}),
                    ("search_memory", {"query": "Keyed Labs CEO Ivo Pell", "k": 5}),
                ],
            )
        )
        assert json.loads(_text(told))["status"] == "applied"
        assert any(h["namespace"] == "alice" for h in json.loads(_text(mine)))
        (theirs,) = asyncio.run(_calls(url, key("bob"), [("search_memory", {"query": "Keyed Labs CEO Ivo Pell"})]))
        assert all(h["namespace"] != "alice" for h in json.loads(_text(theirs)))  # bob cannot read alice's
        (refused,) = asyncio.run(_calls(url, key("rita"), [("remember", {"statement": "The CEO of X Co is Y Z."})]))
        assert refused.is_error and "PermissionDeniedError" in _text(refused)


def test_the_http_api_serves_mcp_over_the_same_agent(server: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16, gap 4: ``create_app(mcp=True)`` (``serve --mcp``): one process, one service, one model."""
    app = create_app(server.home, agent=server.agent, keys=KeyRing(KEYS.values()), mcp=True)
    service = app.state.factagent.service
    asked: list[str] = []
    real_ask = service.ask

    def spy(who: Any, question: str, namespace: str | None = None) -> Any:
        asked.append(question)
        return real_ask(who, question, namespace)

    monkeypatch.setattr(service, "ask", spy)
    with serve_in_thread(app) as url:
        assert httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize"}).status_code == 401
        told = httpx.post(
            f"{url}/v1/tell", json={"statement": "The CEO of Shared Stack Ltd is Una Ode."}, headers=_bearer("alice")
        )
        assert told.status_code == 200 and told.json()["status"] == "applied", told.text
        found, answered = asyncio.run(
            _calls(
                url,
                key("alice"),
                [
                    ("search_memory", {"query": "Shared Stack Ltd CEO Una Ode", "k": 3}),
                    ("ask", {"question": "Who is the CEO of Shared Stack Ltd?"}),
                ],
            )
        )
        assert any("Una Ode" in h["text"] for h in json.loads(_text(found)))
        assert "Una Ode" in _text(answered)
        assert asked == ["Who is the CEO of Shared Stack Ltd?"]  # the MCP tool called the HTTP API's service
        server.agent.rollback(told.json()["edit_id"], user="alice")


def _bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key(name)}"}
