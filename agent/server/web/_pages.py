"""Rendering: the Jinja environment (autoescaped), page responses with safe headers, and error pages.

Every web route runs under :class:`WebRoute`, which turns errors into friendly HTML pages with the same
status codes as the JSON API (:func:`agent.server._errors.status_of`): 401 sign in, 403 not allowed,
404 no such thing, 422 bad input, 429 slow down. Nothing is changed by a refused request: the checks run
before the service is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.server._errors import status_of
from tools.errors import FactagentError

__all__ = ["PREFIX", "WebError", "WebRoute", "page", "templates"]

logger = logging.getLogger(__name__)

PREFIX = "/ui"
_HERE = Path(__file__).parent
# no inline scripts or styles, no other origins, no framing: user text can never run as code
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
TITLES = {
    400: "Bad request",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Already done",
    413: "Too large",
    422: "Please check your input",
    429: "Too many requests",
    502: "A service behind this one failed",
    503: "Unavailable",
}


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _build() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.globals["prefix"] = PREFIX
    return env


templates = _build()


class WebError(Exception):
    """A refused web request: its status code and a message for the person (never key material)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def page(request: Request, template: str, context: Mapping[str, Any] | None = None, status: int = 200) -> HTMLResponse:
    """Render ``template`` with ``context`` plus the request's session (``session``, ``csrf`` minting)."""
    session = getattr(request.state, "web_session", None)
    html = templates.get_template(template).render(
        {
            "request_path": request.url.path,
            "session": session,
            "who": None if session is None else session.who,
            "csrf": (lambda: "") if session is None else session.mint,
            **(context or {}),
        }
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def error_page(request: Request, status: int, message: str, retry_after: float | None = None) -> HTMLResponse:
    """The friendly error page for ``status`` (with ``Retry-After`` on a 429)."""
    response = page(
        request, "error.html", {"status": status, "title": TITLES.get(status, "Error"), "message": message}, status
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


class WebRoute(APIRoute):
    """A route whose errors become HTML error pages instead of the API's JSON bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except WebError as exc:
                return error_page(request, exc.status, exc.message, exc.retry_after)
            except RequestValidationError as exc:
                fields = ", ".join(sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()}))
                return error_page(request, 422, f"please check these fields: {fields}")
            except StarletteHTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except FactagentError as exc:
                status = status_of(exc)
                if status >= 500:
                    logger.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
                return error_page(request, status, str(exc), getattr(exc, "retry_after", None))

        return guarded
