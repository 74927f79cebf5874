"""FastAPI dependencies: the app's state, and the authenticated, rate-limited caller of a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from agent.server._auth import KeyRing, Principal
from agent.server._errors import ApiError
from agent.server._jobs import AuditJobs
from agent.server._limits import KeyRateLimiter, Metrics
from agent.server._service import Service

__all__ = ["AppState", "Caller", "app_state", "caller"]

_bearer = HTTPBearer(auto_error=False, description="an API key from the keys file")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, as a header")


@dataclass
class AppState:
    """Everything the routes share (``app.state.factagent``)."""

    service: Service
    keys: KeyRing
    limiter: KeyRateLimiter
    metrics: Metrics
    jobs: AuditJobs
    model_name: str = "factagent"


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.factagent
    return state


async def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    """The key's principal; 401 for a missing or unknown key, 429 over the key's request rate.

    ``async`` although it blocks on nothing (a dictionary lookup, a rate counter): FastAPI runs it on the
    event loop instead of handing it to a worker thread and back, a round trip that under load costs a
    request more than the work.
    """
    state = app_state(request)
    presented = bearer.credentials if bearer is not None else header
    who = state.keys.authenticate(presented)
    if who is None:
        raise ApiError(401, "a valid API key is required (Authorization: Bearer <key>)")
    wait = state.limiter.take(who.key_id, who.requests_per_minute)
    if wait is not None:
        raise ApiError(429, f"this key is over its request rate; retry in {wait:.1f} s", retry_after=wait)
    return who


Caller = Annotated[Principal, Depends(caller)]
State = Annotated[AppState, Depends(app_state)]
