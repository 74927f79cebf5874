"""The LangChain tools and retriever, driven by a scripted tool-calling model against a real agent.

The agent is the real stack (SQLite, FAISS, rdflib, MiniLM, the bundled GPT-2 reference model) over a small
slice of the reference world; the chat model is scripted, and each of its steps may read earlier tool
results (as an LLM would read the edit id it must forget).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from pydantic import BaseModel

from agent import Agent
from agent.langchain import FactRetriever, ScriptedChatModel, Step, factagent_tools, run_tool_loop, verify_claim
from eval.agent_bench import statement
from eval.world import World
from memory import Scope, Triple
from tests.agent.tell.conftest import unknown_fact

_ids = itertools.count(1)


def _call(name: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[tool_call(name=name, args=args, id=f"call-{next(_ids)}")])


def _results(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def _edit_id(messages: Sequence[BaseMessage]) -> str:
    remembered = [m for m in _results(messages) if m.name == "remember"]
    return str(json.loads(str(remembered[-1].content))["edit_id"])


def test_the_tools_have_pydantic_schemas_and_turn_errors_into_observations(agent: Agent) -> None:
    tools = {t.name: t for t in factagent_tools(agent, user="tess")}
    assert set(tools) == {"ask", "remember", "forget", "verify_claim"}
    for tool in tools.values():
        assert isinstance(tool.args_schema, type) and issubclass(tool.args_schema, BaseModel)
        assert tool.description
    assert tools["forget"].tool_call_schema.model_json_schema()["required"] == ["edit_id"]  # type: ignore[union-attr]
    # a factagent error (unknown edit) and bad arguments come back as error observations, never raised
    unknown = tools["forget"].invoke(tool_call(name="forget", args={"edit_id": "e-00000000"}, id="c1"))
    assert unknown.status == "error" and unknown.content.startswith("error: no edit")
    extra = tools["ask"].invoke(tool_call(name="ask", args={"question": "Who?", "bogus": 1}, id="c2"))
    assert extra.status == "error"
    empty = tools["remember"].invoke(tool_call(name="remember", args={"statement": ""}, id="c3"))
    assert empty.status == "error"


def test_a_scripted_tool_calling_loop_remembers_asks_verifies_and_forgets(agent: Agent, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_ceo")  # in the KG from the world's documents
    question = f"Who is the CEO of {fact.subject}?"
    told = f"The CEO of {fact.subject} is Jane Roe."
    original = f"The CEO of {fact.subject} is {fact.object}."
    script: list[Step] = [
        lambda m: _call("ask", question=question),
        lambda m: _call("remember", statement=told),
        lambda m: _call("ask", question=question),
        lambda m: _call("verify_claim", claim=told),
        lambda m: _call("verify_claim", claim=original),
        lambda m: _call("forget", edit_id=_edit_id(m)),
        lambda m: _call("ask", question=question),
        lambda m: _call("verify_claim", claim=told),
        lambda m: _call("forget", edit_id="e-00000000"),  # an error observation; the loop goes on
        lambda m: AIMessage(content="done"),
    ]
    model = ScriptedChatModel(script=script)
    messages = run_tool_loop(model, factagent_tools(agent, user="tess"), "Make Jane Roe the CEO, then undo it.")
    assert isinstance(messages[-1], AIMessage) and messages[-1].content == "done"
    results = _results(messages)
    assert [r.name for r in results] == [
        "ask", "remember", "ask", "verify_claim", "verify_claim", "forget", "ask", "verify_claim", "forget",
    ]  # fmt: skip
    assert [r.status for r in results] == ["success"] * 8 + ["error"]
    before, remembered, after, v_told, v_original, forgotten, reverted, v_gone = (
        json.loads(str(r.content)) for r in results[:-1]
    )
    bad = str(results[-1].content)

    assert (before["answer"], before["action"]) == (fact.object, "kg")
    assert remembered["status"] == "applied" and remembered["edit_id"].startswith("e-")
    assert (after["answer"], after["action"]) == ("Jane Roe", "kg")
    assert remembered["edit_id"] in {c.get("edit_id") for c in after["citations"]}
    assert v_told["verdict"] == "SUPPORTED" and v_original["verdict"] == "CONTRADICTED"
    assert v_told["checks"][0]["evidence"][0]["edit_id"] == remembered["edit_id"]
    assert forgotten["edit_id"] == remembered["edit_id"]
    assert (reverted["answer"], reverted["action"]) == (fact.object, "kg")
    assert v_gone["verdict"] == "CONTRADICTED"
    assert bad.startswith("error: no edit")
    # the typed results travel as artifacts next to the JSON the model reads
    assert results[1].artifact.edit_id == remembered["edit_id"]


def test_verify_claim_without_evidence_or_fact(agent: Agent) -> None:
    unknown = verify_claim(agent, "The CEO of Vuxvol Bredioskren Holdings is Ann Bee.")
    assert unknown.verdict == "NOT_ENOUGH_INFO" and unknown.checks
    chat = verify_claim(agent, "Hello there!")
    assert chat.verdict == "NOT_ENOUGH_INFO" and not chat.checks


def test_the_retriever_returns_cited_documents(agent: Agent, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_hq")
    retriever = FactRetriever.from_agent(agent, k=3)
    docs = retriever.invoke(f"Where is {fact.subject} headquartered?")
    assert 0 < len(docs) <= 3
    top = docs[0]
    assert fact.object in top.page_content and top.metadata["origin"] in ("kg", "both")
    assert top.metadata["assertion_id"] and {"score", "item_id", "edit_id"} <= set(top.metadata)
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    edit = agent.tell(statement(small_world, "company_hq", fact.subject, "Lyon"), user="tess")
    assert edit.status == "applied"
    docs = retriever.invoke(f"Where is {fact.subject} headquartered?")
    assert "Lyon" in docs[0].page_content and docs[0].metadata["edit_id"] == edit.edit_id


def test_verify_claim_falls_back_to_memory_when_the_graph_has_nothing(agent: Agent) -> None:
    triple = Triple("Quorvane Industries", "company_ceo", "Ada Okafor")
    agent.wm.memory.add("The CEO of Quorvane Industries is Ada Okafor.", scope=Scope(agent_id="default"), triple=triple)
    supported = verify_claim(agent, "The CEO of Quorvane Industries is Ada Okafor.")
    assert supported.verdict == "SUPPORTED" and supported.checks[0].evidence[0].origin == "memory"
    contradicted = verify_claim(agent, "The CEO of Quorvane Industries is Bob Mbeki.")
    assert contradicted.verdict == "CONTRADICTED" and "memory says Ada Okafor" in contradicted.reason
