"""Edits: the edit log with status, one edit, rollback behind a confirmation page, and (admins) the
quarantine review queue with accept / reject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from agent.server._deps import app_state
from agent.server.web._deps import Signed, require_form
from agent.server.web._pages import PREFIX, WebError, WebRoute, page

if TYPE_CHECKING:
    from agent.server._auth import Principal
    from agent.tell import EditRecord

__all__ = ["may_roll_back", "router"]

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
PER_PAGE = 50
EditId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
ItemId = Annotated[str, Path(pattern=r"^q-[0-9a-f]{8}$")]
SHOWN_TRIPLES = 50


def may_roll_back(who: Principal, record: EditRecord) -> bool:
    """Whether to offer ``who`` a rollback of ``record``: a live told edit that is theirs in a namespace they
    write, or anyone's for admins (the service checks again when it runs)."""
    if record.origin != "tell" or record.status != "applied":
        return False
    return who.role == "admin" or (record.who == f"user:{who.user}" and record.namespace in who.writable)


@router.get("/edits")
def edits(
    request: Request, session: Signed, page_no: Annotated[int, Query(alias="page", ge=1, le=20_000)] = 1
) -> HTMLResponse:
    start = (page_no - 1) * PER_PAGE
    found = app_state(request).service.edits(session.who, None, PER_PAGE + 1, start)
    if start and not found:
        raise WebError(404, "there is no such page of edits")
    shown = found[:PER_PAGE]
    return page(
        request,
        "edits.html",
        {
            "records": [(r, may_roll_back(session.who, r)) for r in shown],
            "page_no": page_no,
            "next_page": page_no + 1 if len(found) > PER_PAGE else None,
        },
    )


@router.get("/edits/{edit_id}")
def edit(request: Request, session: Signed, edit_id: EditId) -> HTMLResponse:
    record = app_state(request).service.edit(session.who, edit_id)
    context = {"record": record, "triples": record.triples[:SHOWN_TRIPLES]}
    return page(request, "edit.html", {**context, "may_roll_back": may_roll_back(session.who, record)})


@router.get("/edits/{edit_id}/rollback")
def confirm_rollback(request: Request, session: Signed, edit_id: EditId) -> HTMLResponse:
    record = app_state(request).service.edit(session.who, edit_id)
    if not may_roll_back(session.who, record):
        raise WebError(403, "this key may not roll back this edit (or it is already rolled back)")
    return page(request, "rollback.html", {"record": record, "triples": record.triples[:SHOWN_TRIPLES]})


@router.post("/edits/{edit_id}/rollback")
def rollback(request: Request, session: Signed, edit_id: EditId, csrf: Annotated[str, Form()] = "") -> HTMLResponse:
    require_form(session, csrf)
    done = app_state(request).service.rollback(session.who, edit_id)
    return page(request, "rolled_back.html", {"done": done})


@router.get("/quarantine")
def quarantine(
    request: Request,
    session: Signed,
    status: Annotated[Literal["pending", "approved", "rejected", "all"], Query()] = "pending",
) -> HTMLResponse:
    items = app_state(request).service.quarantine(session.who, None if status == "all" else status)
    return page(request, "quarantine.html", {"items": items, "status": status})


@router.post("/quarantine/{item_id}/{verdict}")
def review(
    request: Request,
    session: Signed,
    item_id: ItemId,
    verdict: Literal["accept", "reject"],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_form(session, csrf)
    app_state(request).service.review(session.who, item_id, accept=verdict == "accept")
    return RedirectResponse(f"{PREFIX}/quarantine?status=all", status_code=303)
