"""The FastAPI app factory: :func:`create_app` wires the agent, keys, limits and routes together."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response

from agent.server._auth import KeyRing, ServerRole
from agent.server._deps import AppState
from agent.server._errors import install_error_handlers
from agent.server._jobs import AuditJobs, AuditRunner, run_world_audit
from agent.server._limits import BodyLimit, Deadline, KeyRateLimiter, Metrics
from agent.server._service import Service

if TYPE_CHECKING:
    from agent import Agent
    from agent.config import Home, Settings

__all__ = ["NO_WORLD", "create_app", "keys_path", "open_service_agent", "service_settings", "world_facts"]

logger = logging.getLogger(__name__)


def _package_version() -> str:
    from agent.server import VERSION

    return VERSION


def keys_path(home: Home) -> Path:
    """The API keys file: ``[server] keys_file``, else ``<home>/server/keys.toml``."""
    configured = home.settings.server.keys_file
    return Path(configured).expanduser() if configured else home.root / "server" / "keys.toml"


def service_settings(settings: Settings, users: Mapping[str, ServerRole]) -> Settings:
    """``settings`` with the admins among ``users`` (name -> role) as tell-pipeline admins.

    So an admin's key may roll back anyone's edit.
    A user who is ``admin`` in ``[tell] roles`` but holds no admin key is served as ``trusted``: over
    HTTP, the key's role is what counts.
    """
    tell = settings.tell
    roles = dict(tell.roles)
    for user, role in users.items():
        if role == "admin":
            roles[user] = "admin"
        elif roles.get(user) == "admin":
            roles[user] = "trusted"
    return settings.model_copy(update={"tell": tell.model_copy(update={"roles": roles})})


NO_WORLD = (
    "this home holds no world facts yet (the shared 'world' namespace is empty): answers come only from what "
    "clients tell; run `factagent memory load-world` once to load the reference world"
)


def world_facts(agent: Agent) -> int:
    """How many facts the shared ``world`` namespace holds (0 on a fresh home, before ``memory load-world``)."""
    from memory import Scope
    from tools.errors import UnknownNamespaceError

    try:
        return agent.wm.memory.count(Scope(agent_id="world"))
    except UnknownNamespaceError:
        return 0


def open_service_agent(home: Home, keys: KeyRing) -> Agent:
    """The home's agent (model, memory, KG, tell pipeline) with :func:`service_settings`, built by the
    composition root (:func:`agent.wiring.open_agent`)."""
    from agent.config import Home as HomeType
    from agent.wiring import open_agent

    return open_agent(HomeType(root=home.root, settings=service_settings(home.settings, keys.users)))


def create_app(
    home: Home,
    *,
    agent: Agent | None = None,
    keys: KeyRing | None = None,
    audit_runner: AuditRunner | None = None,
    mcp: bool = False,
) -> FastAPI:
    """The HTTP API over the agent of ``home``.

    Args:
        home: the factagent home (state, ``[server]`` settings, the keys file).
        agent: an agent to serve (default: opened from ``home`` now, so the model loads once per process);
            a given agent is not closed with the app.
        keys: API keys (default: read from :func:`keys_path`).
        audit_runner: runs audit jobs (default: :func:`~agent.server._jobs.run_world_audit` on ``home``).
        mcp: also serve the MCP tools at ``/mcp`` (streamable HTTP, the same keys) over the same agent, so
            HTTP and MCP clients share one process and one loaded model (``factagent serve --mcp``).

    Raises:
        ConfigError: a bad keys file or settings.

    Example:
        >>> app = create_app(open_home("~/.factagent"))  # doctest: +SKIP
        >>> uvicorn.run(app, host="127.0.0.1", port=8765)  # doctest: +SKIP
    """
    from agent.server import _openai_compat, _routes_agent, _routes_detox, _routes_facts, _routes_ops, _routes_review

    cfg = home.settings.server
    ring = keys if keys is not None else KeyRing.load(keys_path(home))
    owned = agent is None
    served = agent if agent is not None else open_service_agent(home, ring)
    if owned and not world_facts(served):
        logger.warning(NO_WORLD)
    jobs = AuditJobs(
        home.root / "server" / "audits",
        audit_runner or run_world_audit(home.root),
        cfg.audit_workers,
        max_queued=cfg.audit_queue,
    )
    service = Service(
        served, ask_batch=cfg.ask_batch, ask_wait_s=cfg.ask_wait_ms / 1000, ask_expect_s=cfg.ask_expect_ms / 1000
    )
    state = AppState(service, ring, KeyRateLimiter(cfg.requests_per_minute), Metrics(served.work), jobs)

    mcp_running: Callable[[], AbstractAsyncContextManager[None]] | None = None  # set once the app exists

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        switch = sys.getswitchinterval()
        sys.setswitchinterval(cfg.switch_interval_ms / 1000)  # reads take the interpreter lock from a batch sooner
        try:
            async with mcp_running() if mcp_running is not None else nullcontext():
                yield
        finally:
            sys.setswitchinterval(switch)
        service.close()
        jobs.close()
        if owned:
            served.close()

    app = FastAPI(
        title="factagent",
        version=_package_version(),
        description="Ask, tell, facts, edits, history and audits of the fact-checked agent; OpenAI-compatible chat.",
        lifespan=lifespan,
        docs_url=None,  # served below from local assets: /docs must work offline
        redoc_url=None,
    )
    app.state.factagent = state
    _offline_docs(app)
    install_error_handlers(app)
    for module in (_routes_agent, _routes_facts, _routes_review, _routes_ops, _routes_detox, _openai_compat):
        app.include_router(module.router)
    from agent.server.web import mount_web

    mount_web(app)  # the web app at /ui, over the same service and keys
    if mcp:
        from agent.server._mcp import mount_mcp

        mcp_running = mount_mcp(app, state.service, ring)

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        state.metrics.observe(request.method, path, response.status_code, time.perf_counter() - start)
        return response

    # outermost first: the deadline covers everything; oversized bodies never reach a route
    app.add_middleware(BodyLimit, max_bytes=cfg.max_body_bytes)
    app.add_middleware(Deadline, timeout_s=cfg.timeout_s)
    return app


DOCS_ASSETS = "/docs-assets"


def _offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the ``swagger-ui-bundle`` package's files (no CDN, so it works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="factagent API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
