"""``factagent serve`` (the HTTP API under uvicorn) and ``factagent mcp`` (the MCP server)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.errors import ConfigError

if TYPE_CHECKING:
    from agent.config import Home

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``serve`` and ``mcp`` commands."""
    serve = sub.add_parser("serve", help="serve the HTTP API and OpenAI-compatible chat (uvicorn, loopback)")
    serve.add_argument("--host", default=None, help="interface to bind (default: [server] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: [server] port, 8765)")
    serve.add_argument(
        "--keys", default=None, help="API keys file (default: [server] keys_file or <home>/server/keys.toml)"
    )
    serve.add_argument(
        "--mcp", action="store_true", help="also serve the MCP tools at /mcp (same keys, same process and model)"
    )
    serve.set_defaults(func=run_serve)

    mcp = sub.add_parser("mcp", help="serve the MCP tools over stdio (or streamable HTTP with --http)")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP on loopback instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1")
    mcp.add_argument("--port", type=int, default=8766)
    mcp.add_argument("--user", default="mcp", help="the user the tools act as (default: mcp)")
    mcp.add_argument("--role", choices=("reader", "editor", "admin"), default="editor")
    mcp.add_argument("--namespace", default="default", help="the memory namespace written and searched first")
    mcp.add_argument("--shared", default="world", help="comma-separated namespaces also searched (default: world)")
    mcp.add_argument("--keys", default=None, help="with --http: the API keys file (default: the server's)")
    mcp.set_defaults(func=run_mcp)


def _needs_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError("factagent serve needs the server extra: pip install 'factagent[server]'") from exc


def run_serve(args: argparse.Namespace) -> int:
    _needs_server_extra()
    import uvicorn

    from agent.config import open_home
    from agent.server import KeyRing, create_app, keys_path

    home = open_home(args.home)
    cfg = home.settings.server
    keys = KeyRing.load(keys_path(home) if args.keys is None else Path(args.keys))
    host = args.host or cfg.host
    port = cfg.port if args.port is None else args.port
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: the API is reachable from other machines", host)
    app = create_app(home, keys=keys, mcp=args.mcp)
    from agent.server._app import NO_WORLD, world_facts

    if not world_facts(app.state.factagent.service.agent):
        print(f"note: {NO_WORLD}", flush=True)
    print(
        f"factagent serving on http://{host}:{port}/v1 (OpenAPI at /openapi.json, docs at /docs, web app at /ui)",
        flush=True,
    )
    if args.mcp:
        print(f"factagent MCP on http://{host}:{port}/mcp (API key required)", flush=True)
    # A model batch's Python between tensor ops holds the interpreter lock; a read waiting for it gets it
    # after the switch interval. 0.5 ms instead of Python's 5 ms keeps a read's many hand-offs short.
    sys.setswitchinterval(0.0005)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


def run_mcp(args: argparse.Namespace) -> int:
    try:
        import mcp  # noqa: F401
    except ImportError as exc:
        raise ConfigError("factagent mcp needs the server extra: pip install 'factagent[server]'") from exc
    from agent import Agent
    from agent.config import Home, open_home
    from agent.server import Principal, build_mcp_server
    from agent.server._app import service_settings
    from agent.server._service import Service
    from agent.tell._trust import check_user
    from memory import Scope

    shared = tuple(s for s in args.shared.split(",") if s)
    for namespace in (args.namespace, *shared):
        Scope(agent_id=namespace)  # validates the name
    who = Principal(check_user(args.user), args.role, (args.namespace,), shared)
    home = open_home(args.home)
    if args.http:
        return _run_mcp_http(args, home)
    settings = service_settings(home.settings, {who.user: who.role})
    agent = Agent.open(Home(root=home.root, settings=settings))
    try:
        build_mcp_server(Service(agent), who).run("stdio")
    finally:
        agent.close()
    return 0


def _run_mcp_http(args: argparse.Namespace, home: Home) -> int:
    """``mcp --http``: streamable HTTP behind the HTTP API's keys (``--keys`` or the home's keys file)."""
    import uvicorn

    from agent.server import KeyRing, keys_path, mcp_http_app
    from agent.server._app import open_service_agent
    from agent.server._service import Service

    keys = KeyRing.load(keys_path(home) if args.keys is None else Path(args.keys))
    if not keys.users:
        raise ConfigError("factagent mcp --http needs API keys (the keys file of `factagent serve`, or --keys)")
    agent = open_service_agent(home, keys)
    try:
        print(f"factagent MCP on http://{args.host}:{args.port}/mcp (API key required)", flush=True)
        uvicorn.run(mcp_http_app(Service(agent), keys), host=args.host, port=args.port, log_level="warning")
    finally:
        agent.close()
    return 0
