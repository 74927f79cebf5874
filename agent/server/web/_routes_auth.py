"""Sign in with an API key (a session cookie, never the key), sign out, and the unknown-page 404."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from agent.server._deps import app_state
from agent.server.web._deps import Signed, require_form, sessions
from agent.server.web._pages import PREFIX, WebError, WebRoute, page
from agent.server.web._session import COOKIE

__all__ = ["fallback", "router"]

router = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
fallback = APIRouter(prefix=PREFIX, route_class=WebRoute, include_in_schema=False)
PRE = "fa_signin"  # the sign-in form's own token (double submit): no site can sign a browser in as someone else
SIGN_IN_RATE = 30  # sign-in attempts per minute per client address: guessing keys is slow


def _cookie(response: Response, name: str, value: str, request: Request) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=request.url.scheme == "https", path=PREFIX
    )


@router.get("", summary="The web app's start page")
def start() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/chat", status_code=303)


@router.get("/signin")
def signin_form(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "signin.html", {"pre": token})
    _cookie(response, PRE, token, request)
    return response


@router.post("/signin")
def signin(request: Request, key: Annotated[str, Form(max_length=512)], pre: Annotated[str, Form()] = "") -> Response:
    cookie = request.cookies.get(PRE, "")
    if not cookie or not hmac.compare_digest(cookie, pre):
        raise WebError(403, "this sign-in form has expired: reload the page and try again")
    state = app_state(request)
    address = request.client.host if request.client else "unknown"
    wait = state.limiter.take(f"signin:{address}", SIGN_IN_RATE)
    if wait is not None:
        raise WebError(429, f"too many sign-in attempts; retry in {wait:.1f} s", retry_after=wait)
    who = state.keys.authenticate(key.strip())
    if who is None:
        token = secrets.token_urlsafe(24)
        refused = page(request, "signin.html", {"pre": token, "failed": True}, status=401)
        _cookie(refused, PRE, token, request)
        return refused
    session = sessions(request).open(who)
    response = RedirectResponse(f"{PREFIX}/chat", status_code=303)
    _cookie(response, COOKIE, session.token, request)
    response.delete_cookie(PRE, path=PREFIX)
    return response


@router.post("/signout")
def signout(request: Request, session: Signed, csrf: Annotated[str, Form()] = "") -> Response:
    require_form(session, csrf)
    sessions(request).close(session.token)
    response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@fallback.api_route("/{rest:path}", methods=["GET", "POST"])
def unknown(rest: str) -> Response:
    raise WebError(404, "there is no such page")
