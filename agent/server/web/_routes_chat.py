"""Chat: ask (an answer with its action, confidence, citations and the signals behind it) and tell."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from agent.server._deps import app_state
from agent.server.web._deps import Signed, require_form
from agent.server.web._pages import PREFIX, WebRoute, page

if TYPE_CHECKING:
    from agent._answer import Signals

__all__ = ["router", "why_rows"]

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
Namespace = Annotated[str, Form(max_length=128)]
MAX_TEXT = 2_000
SHOWN = 240  # characters of a signal's value shown in "why"


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, tuple):
        if not value:
            return "none"
        first = getattr(value[0], "text", value[0])
        return f"{len(value)}: {first}" if len(value) > 1 else str(first)
    text = getattr(value, "text", None)
    if text is not None:
        prob = getattr(value, "prob", None)
        return f"{text!s} (p={prob:.3f})" if isinstance(prob, float) else str(text)
    return str(value)


def why_rows(signals: Signals | None) -> list[tuple[str, str]]:
    """The signals the policy weighed, as (name, shown value) rows, skipping the question and empty ones."""
    if signals is None:
        return []
    rows = [("memory_top", _show(signals.memory_top)), ("model_confidence", _show(signals.model_confidence))]
    for f in fields(signals):
        value = getattr(signals, f.name)
        if f.name == "question" or value is None:
            continue
        shown = _show(value)
        rows.append((f.name, shown if len(shown) <= SHOWN else shown[:SHOWN] + "…"))
    return rows


@router.get("/chat")
def chat(request: Request, session: Signed) -> HTMLResponse:
    return page(request, "chat.html")


@router.post("/chat/ask")
async def ask(
    request: Request,
    session: Signed,
    question: Annotated[str, Form(min_length=1, max_length=MAX_TEXT)],
    namespace: Namespace = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    require_form(session, csrf)  # asking changes nothing, but a forged ask would spend the key's rate
    service = app_state(request).service
    answer = await asyncio.wrap_future(service.ask_later(session.who, question, namespace or None))
    return page(request, "chat.html", {"question": question, "answer": answer, "why": why_rows(answer.signals)})


@router.post("/chat/tell")
def tell(
    request: Request,
    session: Signed,
    statement: Annotated[str, Form(min_length=1, max_length=MAX_TEXT)],
    namespace: Namespace = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    require_form(session, csrf)
    told = app_state(request).service.tell(session.who, statement, namespace or None)
    return page(request, "chat.html", {"statement": statement, "told": told})
