"""Mounting the web app on the API's FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from agent.server.web import _routes_audits, _routes_auth, _routes_chat, _routes_edits, _routes_memory
from agent.server.web._pages import PREFIX
from agent.server.web._session import SessionStore

__all__ = ["mount_web"]


def mount_web(app: FastAPI, store: SessionStore | None = None) -> None:
    """Serve the pages under ``/ui`` (static files at ``/ui/static``) with a session table in this process."""
    app.state.factagent_web = store or SessionStore()
    app.mount(f"{PREFIX}/static", StaticFiles(directory=Path(__file__).parent / "static"), name="web-static")
    for module in (_routes_auth, _routes_chat, _routes_memory, _routes_edits, _routes_audits):
        app.include_router(module.router)
    app.include_router(_routes_auth.fallback)  # last: any other /ui path is a friendly 404
