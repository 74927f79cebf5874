"""A LangChain tool-calling loop over factagent's tools: ask, remember, verify_claim, forget.

Offline, a scripted chat model plays the part of the LLM (it reads the tool results, e.g. the edit id it
forgets). With a real tool-calling model, pass it instead: ``run_tool_loop(ChatOpenAI(...), tools, prompt)``
(any ``BaseChatModel`` with ``bind_tools``; e.g. ``factagent serve``'s endpoint or a local vLLM).

Run it (bundled GPT-2 reference model and MiniLM; a temporary home unless ``--home``)::

    .venv/bin/python examples/langchain_agent.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.messages.tool import tool_call

from agent import Agent
from agent.cli._agent import _world, ensure_world_loaded
from agent.config import open_home
from agent.langchain import FactRetriever, ScriptedChatModel, Step, factagent_tools, run_tool_loop

COMPANY, NEW_CEO = "Alibaba", "Takahiro Hachigō"


_ids = itertools.count(1)


def _call(name: str, **args: str) -> AIMessage:
    """The model's turn: one tool call (ids are unique within the conversation)."""
    return AIMessage(content="", tool_calls=[tool_call(name=name, args=args, id=f"call-{next(_ids)}")])


def _last_result(messages: Sequence[BaseMessage]) -> dict[str, object]:
    """The JSON body of the latest tool result (an error observation is kept as text)."""
    last = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
    text = str(last.content)
    return json.loads(text) if text.startswith("{") else {"error": text}


def script() -> list[Step]:
    """What an LLM would do with the user's request: check, store, re-check, then undo the edit."""
    question = f"Who is the CEO of {COMPANY}?"
    statement = f"The CEO of {COMPANY} is {NEW_CEO}."
    return [
        lambda m: _call("ask", question=question),
        lambda m: _call("remember", statement=statement),
        lambda m: _call("ask", question=question),
        lambda m: _call("verify_claim", claim=statement),
        lambda m: _call("forget", edit_id=str(_history_edit_id(m))),
        lambda m: _call("ask", question=question),
        lambda m: AIMessage(content=f"Done; the answer is back to {_last_result(m).get('answer')}."),
    ]


def _history_edit_id(messages: Sequence[BaseMessage]) -> object:
    for m in messages:
        if isinstance(m, ToolMessage) and m.name == "remember":
            return json.loads(str(m.content))["edit_id"]
    return "e-00000000"


def _show(message: BaseMessage) -> str:
    if isinstance(message, AIMessage) and message.tool_calls:
        return ", ".join(f"{c['name']}({json.dumps(c['args'], ensure_ascii=False)})" for c in message.tool_calls)
    return str(message.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="factagent home (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="factagent-lc-") as tmp:
        agent = Agent.open(open_home(args.home or tmp))
        try:
            ensure_world_loaded(agent, _world())
            tools = factagent_tools(agent, user="alice")
            prompt = f"Set {COMPANY}'s CEO to {NEW_CEO}, check it, then undo it."
            for message in run_tool_loop(ScriptedChatModel(script=script()), tools, prompt):
                print(f"{message.type:>5}: {_show(message)}")  # noqa: T201 (a script's output)
            docs = FactRetriever.from_agent(agent, k=2).invoke("Who is the CEO of AOL?")
            shown = [(d.page_content, d.metadata["origin"], round(d.metadata["score"], 2)) for d in docs]
            print("retriever:", shown)  # noqa: T201
        finally:
            agent.close()


if __name__ == "__main__":
    main()
