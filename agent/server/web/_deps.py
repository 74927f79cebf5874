"""Web dependencies: the session store, the signed-in browser of a request, and form-token checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent.server._deps import AppState, app_state
from agent.server.web._pages import WebError
from agent.server.web._session import COOKIE, SessionStore, WebSession

__all__ = ["Signed", "require_form", "sessions", "signed_in"]

SIGN_IN = "you are not signed in, or your session has ended: sign in with your API key"
STALE_FORM = "this form has expired or was already sent (nothing was changed): reload the page and try again"


def sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.factagent_web
    return store


def signed_in(request: Request) -> WebSession:
    """The request's live session, rate limited like its key; 401 without one, 429 over the key's rate."""
    session = sessions(request).get(request.cookies.get(COOKIE))
    if session is None:
        raise WebError(401, SIGN_IN)
    request.state.web_session = session  # error pages rendered from here on show who is signed in
    state: AppState = app_state(request)
    wait = state.limiter.take(session.who.key_id, session.who.requests_per_minute)
    if wait is not None:
        raise WebError(429, f"too many requests from this key; retry in {wait:.1f} s", retry_after=wait)
    return session


def require_form(session: WebSession, token: str | None) -> None:
    """Spend the form's one-time token; 403 for a missing, foreign or replayed one (nothing runs)."""
    if not session.spend(token):
        raise WebError(403, STALE_FORM)


Signed = Annotated[WebSession, Depends(signed_in)]
