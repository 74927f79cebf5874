"""LangChain tools called the ways client code calls them: a plain string, bad arguments (issue 16, item 7)."""

from __future__ import annotations

import json

from langchain_core.messages.tool import tool_call

from agent import Agent
from agent.langchain import factagent_tools


def test_a_plain_string_invokes_a_one_argument_tool(agent: Agent) -> None:
    tools = {t.name: t for t in factagent_tools(agent, user="tess")}
    body = json.loads(tools["ask"].invoke("Who is the CEO of Nowhere Widgets Ltd?"))
    assert body["action"] in {"kg", "retrieval", "parametric", "abstain"}
    told = json.loads(tools["remember"].invoke("The CEO of Plainstring Corp is Ada Vale."))
    assert told["status"] == "applied" and told["edit_id"]


def test_argument_errors_come_back_as_error_observations_with_the_detail(agent: Agent) -> None:
    tools = {t.name: t for t in factagent_tools(agent, user="tess")}
    extra = tools["ask"].invoke(tool_call(name="ask", args={"question": "Who?", "bogus": 1}, id="c1"))
    assert extra.status == "error"
    assert extra.content.startswith("error: ") and "bogus" in extra.content
    empty = tools["remember"].invoke(tool_call(name="remember", args={"statement": ""}, id="c2"))
    assert empty.status == "error" and "statement" in empty.content and "at least 1" in empty.content
    missing = tools["forget"].invoke(tool_call(name="forget", args={}, id="c3"))
    assert missing.status == "error" and "edit_id" in missing.content and "required" in missing.content.lower()
