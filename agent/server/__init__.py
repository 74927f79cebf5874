"""factagent as a service: the HTTP API (FastAPI), an OpenAI-compatible chat endpoint and an MCP server.

``factagent serve`` runs :func:`create_app` under uvicorn on loopback; ``factagent mcp`` runs
:func:`build_mcp_server` over stdio, or :func:`mcp_http_app` over streamable HTTP (with the same keys).
API keys map to users, roles (reader, editor, admin) and namespaces (:class:`KeyRing`). FastAPI and mcp
are imported only when these are used, so ``import agent.server`` stays light; the wire models are in
:mod:`agent.server._schemas`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.server._auth import ApiKey, KeyRing, Principal, ServerRole, hash_key

if TYPE_CHECKING:
    from agent.server._app import create_app, keys_path
    from agent.server._mcp import build_mcp_server, mcp_http_app

__all__ = [  # noqa: RUF022 -- plain sorted() order, which the tests check
    "ApiKey",
    "KeyRing",
    "Principal",
    "ServerRole",
    "VERSION",
    "build_mcp_server",
    "create_app",
    "hash_key",
    "keys_path",
    "mcp_http_app",
]

VERSION = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("create_app", "keys_path"):
        from agent.server import _app

        return getattr(_app, name)
    if name in ("build_mcp_server", "mcp_http_app"):
        from agent.server import _mcp

        return getattr(_mcp, name)
    raise AttributeError(f"module 'agent.server' has no attribute {name!r}")
