"""``/v1/chat/completions`` and ``/v1/models``: any OpenAI client chats with the fact-checked assistant.

The last user message is what counts: a statement of facts from a key that may edit is told (the reply
says what changed, with the edit id); anything else is asked, and the reply is the agent's answer (or its
abstention). The agent's action, confidence and citations ride along in the extra ``factagent`` field.
``stream=true`` sends the whole reply as one chunk, then a closing chunk (both with ``factagent``), then
``[DONE]``. Token counts in ``usage`` are
whitespace word counts (the served model may not be a tokenizer's).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.server._convert import answer_out, tell_out
from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES, ApiError
from agent.server._schemas import AnswerOut, TellOut

__all__ = ["ChatRequest", "ChatResponse", "router"]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["openai"])


class ChatMessage(BaseModel):
    """One message; content parts other than text are refused."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            parts = []
            for part in self.content:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ApiError(422, "only text content parts are supported")
                parts.append(part["text"])
            return "\n".join(parts)
        return self.content or ""


class ChatRequest(BaseModel):
    """The chat-completions request (sampling fields are accepted and ignored: answers are deterministic)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    namespace: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


class ReplyMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: ReplyMessage
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FactagentExtra(BaseModel):
    """What the agent did: ``ask`` with its answer, or ``tell`` with the edit."""

    mode: Literal["ask", "tell"]
    answer: AnswerOut | None = None
    tell: TellOut | None = None


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    factagent: FactagentExtra


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def _words(text: str) -> int:
    return len(text.split())


@router.get("/models", response_model=ModelList, summary="The one model served")
def models(who: Caller, state: State) -> ModelList:
    return ModelList(data=[ModelCard(id=state.model_name, created=0, owned_by="factagent")])


@router.get("/models/{model_id}", response_model=ModelCard, summary="The served model, by id")
def model(model_id: Annotated[str, Path(min_length=1, max_length=200)], who: Caller, state: State) -> ModelCard:
    if model_id != state.model_name:
        raise ApiError(404, f"no model {model_id!r}; this server serves {state.model_name!r}")
    return ModelCard(id=state.model_name, created=0, owned_by="factagent")


@router.post(
    "/chat/completions",
    response_model=ChatResponse,
    summary="OpenAI-compatible chat with the fact-checked assistant",
    responses={200: {"content": {"text/event-stream": {}}}},
)
def chat(body: ChatRequest, who: Caller, state: State) -> Any:
    users = [m for m in body.messages if m.role == "user"]
    if not users:
        raise ApiError(422, "messages must contain a user message")
    last = users[-1].text().strip()
    if not last:
        raise ApiError(422, "the last user message is empty")
    service = state.service
    extra: FactagentExtra
    if who.can_edit and who.writable and service.is_statement(who, last, body.namespace):
        told = service.tell(who, last, body.namespace)
        reply = told.message
        extra = FactagentExtra(mode="tell", tell=tell_out(told))
    else:  # a follow-up's pronoun reads the earlier user messages ("Where is it headquartered?")
        question = service.follow_up(who, last, [m.text() for m in users[:-1]], body.namespace)
        answer = service.ask(who, question, body.namespace)
        reply = answer.text if answer.action != "abstain" and answer.text else "I don't know."  # refuse: its reason
        extra = FactagentExtra(mode="ask", answer=answer_out(answer))
    prompt = sum(_words(m.text()) for m in body.messages)
    out = ChatResponse(
        id="chatcmpl-" + secrets.token_hex(12), created=int(time.time()), model=body.model,
        choices=[Choice(index=0, message=ReplyMessage(content=reply))],
        usage=Usage(prompt_tokens=prompt, completion_tokens=_words(reply), total_tokens=prompt + _words(reply)),
        factagent=extra,
    )  # fmt: skip
    if body.stream:
        return StreamingResponse(_stream(out), media_type="text/event-stream")
    return out


def _stream(out: ChatResponse) -> Iterator[str]:
    base = {"id": out.id, "object": "chat.completion.chunk", "created": out.created, "model": out.model}
    text = out.choices[0].message.content
    extra = out.factagent.model_dump(mode="json")  # on every chunk, as on the non-streamed reply
    first = {
        **base,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
        "factagent": extra,
    }
    last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "factagent": extra}
    yield f"data: {json.dumps(first)}\n\n"
    yield f"data: {json.dumps(last)}\n\n"
    yield "data: [DONE]\n\n"
