"""Audits: start an audit job, watch its progress (the page refreshes itself while it runs, no JS
needed), open its report.html, and compare two finished runs metric by metric."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from agent.server._deps import app_state
from agent.server._schemas import AuditJobOut, AuditRequest
from agent.server.web._deps import Signed, require_form
from agent.server.web._pages import HEADERS, PREFIX, WebError, WebRoute, page

__all__ = ["compare_rows", "router"]

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
JobId = Annotated[str, Path(pattern=r"^a-[0-9a-f]{12}$")]
JobQuery = Annotated[str, Query(pattern=r"^a-[0-9a-f]{12}$")]
# the report is another program's HTML: sandboxed (no scripts, no forms, no same-origin access to the app)
REPORT_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def compare_rows(a: AuditJobOut, b: AuditJobOut) -> list[tuple[str, str, float | None, float | None]]:
    """(setup, metric, value in a, value in b) for every metric either finished run measured."""
    ra, rb = a.result or {}, b.result or {}
    rows = []
    for setup in sorted(set(ra) | set(rb)):
        metrics = sorted(set(ra.get(setup, {})) | set(rb.get(setup, {})))
        rows += [(setup, m, ra.get(setup, {}).get(m), rb.get(setup, {}).get(m)) for m in metrics]
    return rows


@router.get("/audits")
def audits(request: Request, session: Signed) -> HTMLResponse:
    who = session.who
    jobs = app_state(request).jobs.listing(who.user, admin=who.role == "admin")
    return page(request, "audits.html", {"jobs": jobs})


@router.post("/audits")
def start(
    request: Request,
    session: Signed,
    dataset: Annotated[str, Form(max_length=100)] = "world:test",
    setups: Annotated[list[Literal["standalone", "rag", "agent"]] | None, Form()] = None,
    limit: Annotated[int, Form(ge=1, le=5_000)] = 20,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_form(session, csrf)
    if not session.who.can_edit:
        raise WebError(403, "readers may not start audits")
    try:
        job_request = AuditRequest(dataset=dataset, setups=setups or ["standalone"], limit=limit)
    except ValidationError as exc:
        raise WebError(422, "please check the dataset (world:<split>) and the setups") from exc
    job = app_state(request).jobs.submit(session.who.user, job_request)
    return RedirectResponse(f"{PREFIX}/audits/{job.id}", status_code=303)


@router.get("/audits/compare")
def compare(request: Request, session: Signed, a: JobQuery, b: JobQuery) -> HTMLResponse:
    jobs = app_state(request).jobs
    admin = session.who.role == "admin"
    first, second = jobs.get(a, session.who.user, admin), jobs.get(b, session.who.user, admin)
    return page(request, "compare.html", {"a": first, "b": second, "rows": compare_rows(first, second)})


@router.get("/audits/{job_id}")
def job(request: Request, session: Signed, job_id: JobId) -> HTMLResponse:
    state = app_state(request)
    view = state.jobs.get(job_id, session.who.user, session.who.role == "admin")
    has_report = (state.jobs.root / job_id / "report.html").is_file()
    return page(request, "audit.html", {"job": view, "has_report": has_report})


@router.get("/audits/{job_id}/report")
def report(request: Request, session: Signed, job_id: JobId) -> HTMLResponse:
    state = app_state(request)
    state.jobs.get(job_id, session.who.user, session.who.role == "admin")  # 404 for another user's job
    path = state.jobs.root / job_id / "report.html"
    if not path.is_file():
        raise WebError(404, "this audit has no report (yet)")
    return HTMLResponse(path.read_text(encoding="utf-8"), headers={**HEADERS, "Content-Security-Policy": REPORT_CSP})
