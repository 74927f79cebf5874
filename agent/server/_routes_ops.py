"""``/v1/health``, ``/v1/metrics`` and the audit jobs ``/v1/audits``."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse, PlainTextResponse

import agent.server as _package
from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES, ApiError
from agent.server._schemas import AuditJobOut, AuditRequest, HealthOut

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get("/health", response_model=HealthOut, summary="Liveness (no key needed)")
def health(state: State) -> HealthOut:
    return HealthOut(status="ok", version=_package.VERSION, uptime_s=round(time.time() - state.metrics.started, 3))


@router.get(
    "/metrics",
    summary="Request counters (Prometheus text; ?format=json for JSON)",
    response_model=None,
    responses={
        200: {
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            }
        },
        422: ERROR_RESPONSES[422],
    },
)
def metrics(state: State, format: Literal["prometheus", "json"] = "prometheus") -> Response:  # noqa: A002
    if format == "json":
        return JSONResponse(state.metrics.snapshot())
    return PlainTextResponse(state.metrics.prometheus(), media_type="text/plain; version=0.0.4")


@router.post(
    "/audits", response_model=AuditJobOut, status_code=202, responses=ERROR_RESPONSES, summary="Start an audit job"
)
def start_audit(body: AuditRequest, who: Caller, state: State) -> AuditJobOut:
    if not who.can_edit:
        raise ApiError(403, "readers may not start audits")
    return state.jobs.submit(who.user, body)


@router.get(
    "/audits/{job_id}",
    response_model=AuditJobOut,
    responses=ERROR_RESPONSES,
    summary="An audit job's status and result",
)
def audit(job_id: Annotated[str, Path(pattern=r"^a-[0-9a-f]{12}$")], who: Caller, state: State) -> AuditJobOut:
    return state.jobs.get(job_id, who.user, admin=who.role == "admin")
