"""Errors as JSON bodies (:class:`~agent.server._schemas.ErrorBody`) with the right status code.

A client's mistake is always a 4xx: factagent's own errors map by type (table below), FastAPI's validation
errors become 422, unknown routes 404, wrong methods 405. Only a failure of the server itself (a store, an
upstream endpoint) is a 5xx, and its body never carries a traceback.

==========================================  ======  ==================
error                                       status  ``error.type``
==========================================  ======  ==================
missing / unknown API key                   401     unauthorized
PermissionDeniedError                       403     forbidden
NotFoundError (UnknownEditError, ...)       404     not_found
ContradictoryStatementError                 409     conflict
StateConflictError (already rolled back)    409     conflict
InvalidInputError, InterpretationError,     422     invalid_request
EditError (a detox edit's bad instance)
RateLimitedError (tell, per-key limit)      429     rate_limited
BackendError                                502     upstream_error
StoreError, ConfigError, other errors       503     unavailable
anything unexpected (a bug)                 500     internal_error
==========================================  ======  ==================
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.server._schemas import ErrorBody, ErrorDetail
from tools.errors import (
    BackendError,
    ContradictoryStatementError,
    EditError,
    FactagentError,
    InterpretationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    StateConflictError,
)

__all__ = ["ERROR_RESPONSES", "ApiError", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "unavailable",
    504: "timeout",
}

# every route documents these, so a schema check knows the error bodies
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": kind} for code, kind in _TYPES.items() if code not in (405, 500)
}


class ApiError(Exception):
    """An HTTP error raised by a route: status code, message and optional ``Retry-After``."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def error_response(
    status: int,
    message: str,
    retry_after: float | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON error response for ``status`` (``headers`` added, e.g. a 405's ``Allow``)."""
    detail = ErrorDetail(
        type=_TYPES.get(status, "error"), message=message, code=status, param=param, retry_after=retry_after
    )
    out = dict(headers or {})
    if retry_after is not None:
        out["Retry-After"] = str(max(1, round(retry_after)))
    if status == 401:
        out["WWW-Authenticate"] = "Bearer"
    return JSONResponse(ErrorBody(error=detail).model_dump(), status_code=status, headers=out or None)


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method the API documents at the request's path, sorted.

    Read from the OpenAPI paths (public and complete), since a route table lists one route per method.
    """
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods |= {m.upper() for m in operations if m.upper() in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


def status_of(exc: FactagentError) -> int:
    """The HTTP status for one of factagent's errors."""
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ContradictoryStatementError | StateConflictError):
        return 409
    if isinstance(exc, InvalidInputError | InterpretationError | EditError):
        return 422
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, BackendError):
        return 502
    return 503


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :func:`error_response`."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        err = cast(ApiError, exc)  # registered for ApiError only
        return error_response(err.status, err.message, err.retry_after)

    async def on_factagent(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc)  # type: ignore[arg-type]
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        retry = getattr(exc, "retry_after", None)
        return error_response(status, str(exc), retry)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors[:5])
        return error_response(422, message or "invalid request", param=where or None)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 400
        message = str(exc.detail) if isinstance(exc, StarletteHTTPException) else "bad request"
        headers = dict(getattr(exc, "headers", None) or {})
        if status == 405:
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return error_response(status, message, headers=headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("%s %s crashed", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal error; see the server log")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(FactagentError, on_factagent)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
