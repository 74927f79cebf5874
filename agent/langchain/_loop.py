"""A minimal tool-calling loop, and a scripted chat model that drives it offline (examples and tests).

The loop is the one every tool-calling agent runs: the model answers; while it asks for tools, each tool call
is run and its result (a ``ToolMessage``, errors included) goes back to the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import PrivateAttr

__all__ = ["ScriptedChatModel", "Step", "run_tool_loop"]

logger = logging.getLogger(__name__)

Step = Callable[[Sequence[BaseMessage]], AIMessage]
"""One turn of a script: the conversation so far -> the model's next message (with or without tool calls)."""


class ScriptedChatModel(BaseChatModel):
    """A chat model that plays a script, one step per call; a step can read earlier tool results.

    It stands in for a tool-calling LLM where none is available (offline examples, tests); after the last
    step it answers ``"(end of script)"``.

    Args:
        script: the steps, in order.
    """

    script: list[Step]
    _turn: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "factagent-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """The script already knows its tools: binding changes nothing."""
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._turn < len(self.script):
            message = self.script[self._turn](messages)
        else:
            message = AIMessage(content="(end of script)")
        self._turn += 1
        return ChatResult(generations=[ChatGeneration(message=message)])


def run_tool_loop(
    model: BaseChatModel, tools: Sequence[BaseTool], prompt: str | Sequence[BaseMessage], *, max_steps: int = 10
) -> list[BaseMessage]:
    """Let ``model`` call ``tools`` until it answers without a tool call (or ``max_steps`` model turns).

    Args:
        model: any chat model that supports ``bind_tools``.
        tools: e.g. :func:`factagent_tools`.
        prompt: the user's message, or a conversation to continue.
        max_steps: most model turns.

    Returns:
        The whole conversation; the last message is the model's final answer unless ``max_steps`` ran out.
    """
    history: list[BaseMessage] = [HumanMessage(prompt)] if isinstance(prompt, str) else list(prompt)
    bound = model.bind_tools(list(tools))
    by_name = {t.name: t for t in tools}
    for _ in range(max_steps):
        reply = bound.invoke(history)
        history.append(reply)
        if not isinstance(reply, AIMessage) or not reply.tool_calls:
            return history
        for call in reply.tool_calls:
            tool = by_name.get(call["name"])
            if tool is None:
                error = f"error: no tool named {call['name']!r}"
                history.append(ToolMessage(error, tool_call_id=call["id"] or "", status="error"))
                continue
            history.append(tool.invoke(call))
    logger.warning("tool loop stopped after %d model turns", max_steps)
    return history
