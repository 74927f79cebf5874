"""The MCP server (the ``mcp`` SDK's ``MCPServer``): the agent's tools for any MCP client.

Tools, with their hints:

=============  ===========  ============  ==================================================
tool           read-only    destructive   does
=============  ===========  ============  ==================================================
ask            yes          no            answers a question (action, confidence, citations)
search_memory  yes          no            the facts most similar to a query
verify_claim   yes          no            SUPPORTED / CONTRADICTED / NOT_ENOUGH_INFO, with evidence
history        yes          no            edits and assertions about a subject
remember       no           no            tells a fact (additive: an edit, or quarantined)
forget         no           yes           rolls an edit back
quarantine     yes          no            (admin keys) statements held for review: who, when, what, why
review         no           no            (admin keys) accepts or rejects a held statement
=============  ===========  ============  ==================================================

Over stdio the server acts as one principal (``factagent mcp --user --role --namespace``): the client is
whoever started the process. Over streamable HTTP (:func:`mcp_http_app`) every request needs one of the
HTTP API's keys (``Authorization: Bearer <key>`` or ``X-API-Key``; 401 without), and each tool call acts
as that key's principal, with the same tenancy as the HTTP API. :func:`mount_mcp` serves them at ``/mcp``
of the HTTP API itself (``factagent serve --mcp``), over the same service, so one process loads one model.
Errors a caller can fix come back as tool errors (``isError``) with the message, never as a crash.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from agent.langchain import answer_json, verify_claim
from agent.server._convert import edit_out, fact_out, tell_out
from tools.errors import FactagentError, PermissionDeniedError

if TYPE_CHECKING:
    from agent.server._auth import KeyRing, Principal
    from agent.server._service import Service

__all__ = ["build_mcp_server", "mcp_http_app", "mount_mcp"]

logger = logging.getLogger(__name__)
_caller: ContextVar[Principal] = ContextVar("factagent_mcp_caller")
UNAUTHORIZED = "a valid API key is required (Authorization: Bearer <key>)"


def presented_key(headers: Any) -> str | None:
    """The API key in ``Authorization: Bearer`` or ``X-API-Key`` (as the HTTP API reads it)."""
    auth = headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return str(token.strip())
    header = headers.get("x-api-key")
    return str(header) if header else None


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def build_mcp_server(
    service: Service, who: Principal | None, name: str = "factagent", *, keys: KeyRing | None = None
) -> Any:
    """An ``MCPServer`` whose tools call ``service`` as ``who``; run it with ``.run("stdio")``.

    Args:
        service: the agent's operations.
        who: the principal every call acts as (stdio); with ``keys``, ``None`` (each call's key decides).
        name: the server's name.
        keys: over HTTP, the API keys: each call acts as the principal of the key its HTTP request carries
            (all tools are listed; a reader's ``remember`` / ``forget`` are refused).

    Example:
        >>> server = build_mcp_server(Service(agent), Principal("me", "editor", ("default",)))  # doctest: +SKIP
        >>> server.run("stdio")  # doctest: +SKIP
    """
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    if who is None and keys is None:
        raise ValueError("give the principal (stdio) or the API keys (HTTP)")

    def principal(ctx: Any) -> Principal:
        if keys is None:
            assert who is not None  # checked above
            return who
        request = ctx.request_context.request if ctx is not None else None
        found = keys.authenticate(presented_key(request.headers)) if request is not None else None
        if found is None:
            raise ToolError(f"unauthorized: {UNAUTHORIZED}")
        return found

    def me() -> Principal:
        return _caller.get()

    server = MCPServer(name, instructions="A fact-checked assistant with editable memory. Ask before you assert.")
    reading = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    adding = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
    removing = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

    def guarded(fn: Any) -> Any:
        def call(*args: Any, ctx: Any = None, **kwargs: Any) -> str:
            token = _caller.set(principal(ctx))  # the tool body runs in this thread: it reads me()
            try:
                return str(fn(*args, **kwargs))
            except FactagentError as exc:
                raise ToolError(f"{type(exc).__name__}: {exc}") from exc
            finally:
                _caller.reset(token)

        # the SDK reads the tool's arguments from the signature and injects the request's Context as ``ctx``
        sig = inspect.signature(fn, eval_str=True)
        ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Context)
        call.__name__, call.__doc__ = fn.__name__, fn.__doc__
        call.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[*sig.parameters.values(), ctx_param], return_annotation=str
        )
        call.__annotations__ = {**fn.__annotations__, "ctx": Context, "return": str}
        return call

    def editor() -> Principal:
        caller = me()
        if not caller.can_edit:
            raise PermissionDeniedError(f"this key ({caller.role}) may not change memory")
        return caller

    @guarded
    def ask(question: str) -> str:
        """Answer a factual question from the knowledge graph, memory or the model; abstains when unsure."""
        return answer_json(service.ask(me(), question))

    @guarded
    def search_memory(query: str, k: int = 5) -> str:
        """The facts in memory most similar to the query, best first (score: cosine similarity)."""
        hits = service.search_facts(me(), query, None, max(1, min(k, 50)))
        return _dump([{"score": round(h.score, 4), **fact_out(h.item).model_dump(mode="json")} for h in hits])

    @guarded
    def verify_claim_tool(claim: str) -> str:
        """Check a factual claim: SUPPORTED, CONTRADICTED or NOT_ENOUGH_INFO, with the evidence."""
        with service.locked():
            names = me().search_namespaces(None)
            return verify_claim(service.agent, claim, names[0], names[1:]).to_json()

    @guarded
    def history(subject: str) -> str:
        """Edits and knowledge-graph assertions about a subject, newest first."""
        return _dump([edit_out(r).model_dump(mode="json") for r in service.history(me(), subject)])

    @guarded
    def remember(statement: str) -> str:
        """Tell a fact in plain English ('The CEO of Acme Corp is Jane Roe.'); returns the edit id."""
        return _dump(tell_out(service.tell(editor(), statement)).model_dump(mode="json"))

    @guarded
    def forget(edit_id: str) -> str:
        """Roll back an edit by its id (as returned by remember), restoring what it replaced."""
        done = service.rollback(editor(), edit_id)
        return _dump({"edit_id": done.edit_id, "message": done.message})

    @guarded
    def quarantine(status: str = "pending") -> str:
        """Statements held for review (pending, approved, rejected or all): who, when, namespace, what, why."""
        from agent.server._routes_review import quarantine_out

        items = service.quarantine(me(), None if status == "all" else status)
        return _dump([quarantine_out(q).model_dump(mode="json") for q in items])

    @guarded
    def review(item_id: str, accept: bool) -> str:
        """Accept (apply as its author's edit) or reject a held statement by its id (q-...)."""
        from agent.server._routes_review import quarantine_out

        item, result = service.review(me(), item_id, accept)
        applied = None if result is None else tell_out(result).model_dump(mode="json")
        return _dump({"item": quarantine_out(item).model_dump(mode="json"), "applied": applied})

    server.add_tool(ask, name="ask", annotations=reading)
    server.add_tool(search_memory, name="search_memory", annotations=reading)
    server.add_tool(verify_claim_tool, name="verify_claim", annotations=reading)
    server.add_tool(history, name="history", annotations=reading)
    if who is None or who.can_edit:
        server.add_tool(remember, name="remember", annotations=adding)
        server.add_tool(forget, name="forget", annotations=removing)
    if who is None or who.role == "admin":  # over HTTP each call's key decides (admins only)
        server.add_tool(quarantine, name="quarantine", annotations=reading)
        server.add_tool(review, name="review", annotations=adding)
    return server


class _Keyed:
    """An ASGI app: ``inner`` behind the HTTP API's keys (401 with ``WWW-Authenticate: Bearer`` without one).

    A class, not a function, so that Starlette's ``Route`` treats it as an ASGI app.
    """

    def __init__(self, inner: Any, keys: KeyRing) -> None:
        self._inner = inner
        self._keys = keys

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
            if self._keys.authenticate(presented_key(headers)) is None:
                body = json.dumps({"error": {"type": "unauthorized", "message": UNAUTHORIZED, "code": 401}})
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self._inner(scope, receive, send)


def mcp_http_app(service: Service, keys: KeyRing, name: str = "factagent") -> Any:
    """The MCP server over streamable HTTP at ``/mcp``, behind the HTTP API's keys.

    A request without a valid key is answered 401 (``WWW-Authenticate: Bearer``) before it reaches MCP;
    each tool call acts as its key's principal.

    Example:
        >>> uvicorn.run(mcp_http_app(Service(agent), KeyRing.load(keys_path(home))), port=8766)  # doctest: +SKIP
    """
    return _Keyed(build_mcp_server(service, None, name, keys=keys).streamable_http_app(), keys)


def mount_mcp(app: Any, service: Service, keys: KeyRing, name: str = "factagent") -> Callable[[], Any]:
    """Serve the MCP tools at ``/mcp`` of the HTTP API ``app``, over the same ``service`` (one agent, one model).

    The tools act as each request's key, as in :func:`mcp_http_app`. The host app must run the returned
    context manager factory in its lifespan (it runs the MCP session manager); ``create_app(mcp=True)`` does.

    Returns:
        ``running``: ``async with running(): ...`` around the app's life.
    """
    from starlette.routing import Route

    server = build_mcp_server(service, None, name, keys=keys)
    inner = server.streamable_http_app()  # routes "/mcp" itself: the request path is passed on unchanged
    app.router.routes.append(Route("/mcp", endpoint=_Keyed(inner, keys), include_in_schema=False))
    running: Callable[[], Any] = server.session_manager.run
    return running
