"""The agent as LangChain tools: ``ask``, ``remember``, ``forget`` and ``verify_claim``.

Each tool validates its arguments with a pydantic schema (unknown fields rejected) and returns
``(content, artifact)``: a compact JSON string for the calling model and the typed result (``Answer``,
``TellResult``, ``RollbackResult``, ``Verification``) for the program. Errors never escape into the agent
loop: a factagent error becomes a ``ToolException`` that the tool turns into an ``error: ...`` observation
(``ToolMessage.status == "error"``), and so does invalid input.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.tools import ArgsSchema, BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent._agent import MAX_QUESTION_CHARS, Agent
from agent._answer import Answer
from agent.langchain._verify import verify_claim
from tools.errors import FactagentError

__all__ = [
    "AskInput",
    "AskTool",
    "FactagentTool",
    "ForgetInput",
    "ForgetTool",
    "RememberInput",
    "RememberTool",
    "VerifyClaimInput",
    "VerifyClaimTool",
    "answer_json",
    "factagent_tools",
    "validation_error_text",
]

logger = logging.getLogger(__name__)
MAX_STATEMENT_CHARS = 4_000


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def validation_error_text(exc: ValidationError | Any) -> str:
    """A tool's invalid arguments as the ``error: ...`` observation, with each field's problem.

    Example: ``error: invalid arguments: question: String should have at least 1 character``.
    """
    if not isinstance(exc, ValidationError):
        return f"error: invalid arguments: {exc}"
    problems = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ())) or "input"
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return "error: invalid arguments: " + "; ".join(problems)


class AskInput(_Input):
    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, description="one question, e.g. 'Who is the CEO of Acme Corp?'"
    )


class RememberInput(_Input):
    statement: str = Field(
        min_length=1, max_length=MAX_STATEMENT_CHARS, description="a fact in plain English, e.g. 'The CEO of X is Y.'"
    )


class ForgetInput(_Input):
    edit_id: str = Field(min_length=1, max_length=64, description="the edit id `remember` returned, e.g. e-7f3a01c2")


class VerifyClaimInput(_Input):
    claim: str = Field(
        min_length=1, max_length=MAX_STATEMENT_CHARS, description="a factual claim in plain English to check"
    )


def answer_json(answer: Answer) -> str:
    """An answer as the compact JSON the ``ask`` tool returns."""
    citations = []
    for e in answer.citations:
        c = e.citation
        row: dict[str, Any] = {"text": e.text, "origin": e.origin}
        row.update({k: v for k, v in (("edit_id", c.edit_id), ("assertion_id", c.assertion_id)) if v})
        row.update({k: v for k, v in (("item_id", c.item_id), ("who", c.who)) if v})
        citations.append(row)
    body = {
        "answer": answer.text or None,
        "action": answer.action,
        "confidence": round(answer.confidence, 4),
        "citations": citations,
        "reason": answer.reason,
    }
    return json.dumps(body, ensure_ascii=False)


class FactagentTool(BaseTool):
    """Common ground of the factagent tools: the agent, who speaks, where, and errors as observations.

    Subclasses implement :meth:`call` with their schema's fields as keyword arguments.
    """

    agent: Agent
    user: str = "user"
    namespace: str = "default"
    handle_tool_error: bool = True
    handle_validation_error: Any = validation_error_text
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

    def call(self, **kwargs: Any) -> tuple[str, Any]:
        raise NotImplementedError

    def _run(self, *args: Any, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> tuple[str, Any]:
        if args:  # ``tool.invoke("plain text")``: LangChain passes the one string positionally
            schema = self.args_schema
            fields = list(schema.model_fields) if isinstance(schema, type) and issubclass(schema, BaseModel) else []
            if len(args) != 1 or len(fields) != 1:
                raise ToolException(f"error: {self.name} takes its arguments by name: {', '.join(fields)}")
            kwargs[fields[0]] = args[0]
        try:
            return self.call(**kwargs)
        except FactagentError as exc:
            logger.info("tool %s failed: %s", self.name, exc)
            raise ToolException(f"error: {exc}") from exc


class AskTool(FactagentTool):
    """Answer a question from the agent's knowledge graph, memory or model, or abstain."""

    name: str = "ask"
    description: str = (
        "Answer a factual question from verified memory. Returns JSON with answer (null when the agent does "
        "not know), action (kg, retrieval, parametric, abstain), confidence, citations and reason."
    )
    args_schema: ArgsSchema | None = AskInput

    def call(self, **kwargs: Any) -> tuple[str, Answer]:
        answer = self.agent.ask(kwargs["question"], namespace=self.namespace)
        return answer_json(answer), answer


class RememberTool(FactagentTool):
    """Tell the agent a fact: it becomes an edit of its memory (or is quarantined, or is not an edit)."""

    name: str = "remember"
    description: str = (
        "Store a fact stated in plain English in the agent's memory. Returns JSON with status (applied, "
        "quarantined, not_an_edit, noop, free_text), edit_id (use it with `forget`) and message."
    )
    args_schema: ArgsSchema | None = RememberInput

    def call(self, **kwargs: Any) -> tuple[str, Any]:
        result = self.agent.tell(kwargs["statement"], user=self.user, namespace=self.namespace)
        body = {
            "status": result.status,
            "edit_id": result.edit_id,
            "triples": [[t.subject, t.relation, t.object] for t in result.triples],
            "message": result.message,
        }
        if result.quarantine_id:
            body["quarantine_id"] = result.quarantine_id
        return json.dumps(body, ensure_ascii=False), result


class ForgetTool(FactagentTool):
    """Roll back one edit (knowledge graph, memory and weights together)."""

    name: str = "forget"
    description: str = "Undo a fact stored earlier with `remember`, given its edit_id. Returns JSON with message."
    args_schema: ArgsSchema | None = ForgetInput

    def call(self, **kwargs: Any) -> tuple[str, Any]:
        result = self.agent.rollback(kwargs["edit_id"], user=self.user)
        body = {"edit_id": result.edit_id, "rolled_back": True, "message": result.message}
        return json.dumps(body, ensure_ascii=False), result


class VerifyClaimTool(FactagentTool):
    """Check a claim against the knowledge graph and memory: SUPPORTED, CONTRADICTED or NOT_ENOUGH_INFO."""

    name: str = "verify_claim"
    description: str = (
        "Fact-check a claim against verified memory. Returns JSON with verdict (SUPPORTED, CONTRADICTED, "
        "NOT_ENOUGH_INFO), the evidence per stated fact and a reason."
    )
    args_schema: ArgsSchema | None = VerifyClaimInput

    def call(self, **kwargs: Any) -> tuple[str, Any]:
        verification = verify_claim(self.agent, kwargs["claim"], namespace=self.namespace)
        return verification.to_json(), verification


def factagent_tools(agent: Agent, *, user: str = "user", namespace: str = "default") -> list[BaseTool]:
    """The agent's four tools for a LangChain tool-calling model: ask, remember, forget, verify_claim.

    Args:
        agent: an agent opened with its tell pipeline (``remember``, ``forget`` and ``verify_claim`` need it).
        user: who the calling model speaks for (the trust policy's user name; edits are authored by them).
        namespace: the memory namespace questions and statements use.

    Example:
        >>> tools = factagent_tools(Agent.open(home), user="alice")  # doctest: +SKIP
        >>> model = ChatOpenAI(base_url="http://127.0.0.1:8000/v1").bind_tools(tools)  # doctest: +SKIP
    """
    return [
        AskTool(agent=agent, user=user, namespace=namespace),
        RememberTool(agent=agent, user=user, namespace=namespace),
        ForgetTool(agent=agent, user=user, namespace=namespace),
        VerifyClaimTool(agent=agent, user=user, namespace=namespace),
    ]
