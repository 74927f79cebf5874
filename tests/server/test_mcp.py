"""``factagent mcp`` driven by the official ``mcp`` client over stdio (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent

from tests.conftest import REPO
from tests.server.conftest import Served


def _json(result: CallToolResult) -> Any:
    block = result.content[0]
    assert isinstance(block, TextContent) and not result.is_error, block
    return json.loads(block.text)


TOOLS = {"ask", "remember", "forget", "search_memory", "verify_claim", "history"}


async def _session_run(home: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent", "--home", str(home), "mcp", "--user", "mia", "--namespace", "mia"],
        env={"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": os.environ["PATH"]},
        cwd=str(REPO),
    )
    out: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        out["tools"] = tools
        told = await session.call_tool("remember", {"statement": "The CEO of Quux Labs is Ida Pell."})
        out["told"] = _json(told)
        asked = await session.call_tool("ask", {"question": "Who is the CEO of Quux Labs?"})
        out["asked"] = _json(asked)
        verified = await session.call_tool("verify_claim", {"claim": "The CEO of Quux Labs is Bob Stone."})
        out["verified"] = _json(verified)
        found = await session.call_tool("search_memory", {"query": "Quux Labs CEO", "k": 3})
        out["found"] = _json(found)
        history = await session.call_tool("history", {"subject": "Quux Labs"})
        out["history"] = _json(history)
        edit_id = out["told"]["edit_id"]
        forgot = await session.call_tool("forget", {"edit_id": edit_id})
        out["forgot"] = _json(forgot)
        out["bad"] = await session.call_tool("forget", {"edit_id": "e-00000000"})
    return out


def test_mcp_over_stdio(tmp_path: Path, loaded_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    out = asyncio.run(_session_run(home))
    tools = out["tools"]
    assert set(tools) == TOOLS
    hints = {name: (t.annotations.read_only_hint, t.annotations.destructive_hint) for name, t in tools.items()}
    assert hints["ask"] == hints["verify_claim"] == hints["search_memory"] == hints["history"] == (True, False)
    assert hints["remember"] == (False, False) and hints["forget"] == (False, True)
    assert out["told"]["status"] == "applied"
    assert "Ida Pell" in out["asked"]["answer"]
    assert out["verified"]["verdict"] == "CONTRADICTED"
    assert any(e["edit_id"] == out["told"]["edit_id"] for e in out["history"])
    assert out["forgot"]["edit_id"] == out["told"]["edit_id"]
    assert out["bad"].is_error


def test_mcp_over_streamable_http(server: Served) -> None:
    from mcp.client.streamable_http import streamable_http_client

    from agent.server import Principal, build_mcp_server
    from agent.server._live import serve_in_thread
    from agent.server._service import Service

    reader = Principal("rex", "reader", ("rex",), shared=("world",))
    app = build_mcp_server(Service(server.agent), reader).streamable_http_app()

    async def go(url: str) -> tuple[set[str], Any]:
        async with streamable_http_client(f"{url}/mcp") as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools}
            return names, _json(await session.call_tool("ask", {"question": "Who is the CEO of Nokia?"}))

    with serve_in_thread(app) as url:
        names, answer = asyncio.run(go(url))
    assert names == TOOLS - {"remember", "forget"}  # a reader's server offers no writing tools
    assert answer["action"] in ("kg", "rag", "model", "abstain")
