"""Memory: search facts, browse facts and passages by namespace / subject / relation / time (paged), each
fact's version history with time travel (``as of``), and a subject's edit history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from agent.server._deps import app_state
from agent.server._schemas import NAMESPACE_PATTERN
from agent.server.web._deps import Signed
from agent.server.web._pages import PREFIX, WebError, WebRoute, page
from memory import MemoryItem

__all__ = ["parse_when", "router"]

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
PER_PAGE = 50
MAX_HITS = 100  # a search ranks at most this many facts (two pages)
Text = Annotated[str, Query(max_length=1_000)]


def parse_when(value: str) -> datetime | None:
    """An ``as of`` time from a form (``2026-01-31T12:00``, a date, or ISO with a zone; UTC when none).

    Raises:
        WebError: 422 for text that is not a time.
    """
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise WebError(422, "'as of' must be a date and time, such as 2026-01-31T12:00") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


@router.get("/memory")
def memory(
    request: Request,
    session: Signed,
    q: Text = "",
    namespace: Annotated[str, Query(max_length=128)] = "",
    subject: Text = "",
    relation: Annotated[str, Query(max_length=200)] = "",
    as_of: Annotated[str, Query(max_length=40)] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    import re

    if namespace and not re.match(NAMESPACE_PATTERN, namespace):
        raise WebError(422, "that is not a namespace name")
    when = parse_when(as_of)
    service = app_state(request).service
    start = (page_no - 1) * PER_PAGE
    hits: list[object] = []
    rows: list[object] = []
    total = 0
    if q:
        if start >= MAX_HITS:
            raise WebError(404, f"a search shows at most {MAX_HITS} facts; refine the query")
        found = service.search_facts(session.who, q, namespace or None, k=min(MAX_HITS, start + PER_PAGE + 1))
        total = len(found)
        hits = list(found[start : start + PER_PAGE])
    else:
        listed = service.list_facts(
            session.who, namespace or None, subject=subject or None, relation=relation or None, as_of=when,
            limit=PER_PAGE, offset=start,
        )  # fmt: skip
        total, rows = listed.total, list(listed.items)
    if start and start >= total:
        raise WebError(404, "there is no such page of results")
    query = {"q": q, "namespace": namespace, "subject": subject, "relation": relation, "as_of": as_of}
    return page(
        request,
        "memory.html",
        {
            "hits": hits, "rows": rows, "total": total, "page_no": page_no, "query": query,
            "next_page": page_no + 1 if start + PER_PAGE < total else None,
            "namespaces": session.who.readable,
        },
    )  # fmt: skip


@router.get("/facts/{fact_id}")
def fact(
    request: Request,
    session: Signed,
    fact_id: Annotated[str, Path(pattern=r"^m-[0-9a-f]{16}$")],
    as_of: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    when = parse_when(as_of)
    versions = app_state(request).service.fact_history(session.who, fact_id)
    shown: MemoryItem | None = versions[-1]
    if when is not None:
        valid = [v for v in versions if v.is_valid_at(when)]
        shown = valid[-1] if valid else None
    return page(request, "fact.html", {"versions": versions, "shown": shown, "fact_id": fact_id, "as_of": as_of})


@router.get("/history")
def history(
    request: Request, session: Signed, subject: Annotated[str, Query(min_length=1, max_length=1_000)]
) -> HTMLResponse:
    records = app_state(request).service.history(session.who, subject)
    return page(request, "history.html", {"subject": subject, "records": records})
