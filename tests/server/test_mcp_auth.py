"""``factagent mcp --http`` behind the HTTP API's keys (issue 16, item 7): 401 without one, each call as its key."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from agent.server import KeyRing, mcp_http_app
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
