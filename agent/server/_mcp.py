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

The server acts as one principal (``factagent mcp --user --role --namespace``): over stdio the client
is whoever started the process; over streamable HTTP it listens on loopback only. Errors a caller can fix
come back as tool errors (``isError``) with the message, never as a crash.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from agent.langchain import answer_json, verify_claim
from agent.server._convert import edit_out, fact_out, tell_out
from tools.errors import FactagentError

if TYPE_CHECKING:
    from agent.server._auth import Principal
    from agent.server._service import Service

__all__ = ["build_mcp_server"]

logger = logging.getLogger(__name__)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def build_mcp_server(service: Service, who: Principal, name: str = "factagent") -> Any:
    """An ``MCPServer`` whose tools call ``service`` as ``who``; run it with ``.run("stdio")``.

    Example:
        >>> server = build_mcp_server(Service(agent), Principal("me", "editor", ("default",)))  # doctest: +SKIP
        >>> server.run("stdio")  # doctest: +SKIP
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    server = MCPServer(name, instructions="A fact-checked assistant with editable memory. Ask before you assert.")
    reading = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    adding = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
    removing = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

    def guarded(fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> str:
            try:
                return str(fn(*args, **kwargs))
            except FactagentError as exc:
                raise ToolError(f"{type(exc).__name__}: {exc}") from exc

        call.__name__, call.__doc__ = fn.__name__, fn.__doc__
        call.__annotations__ = {**fn.__annotations__, "return": str}
        call.__wrapped__ = fn  # type: ignore[attr-defined]  # the SDK reads the signature through it
        return call

    @guarded
    def ask(question: str) -> str:
        """Answer a factual question from the knowledge graph, memory or the model; abstains when unsure."""
        return answer_json(service.ask(who, question))

    @guarded
    def search_memory(query: str, k: int = 5) -> str:
        """The facts in memory most similar to the query, best first (score: cosine similarity)."""
        hits = service.search_facts(who, query, None, max(1, min(k, 50)))
        return _dump([{"score": round(h.score, 4), **fact_out(h.item).model_dump(mode="json")} for h in hits])

    @guarded
    def verify_claim_tool(claim: str) -> str:
        """Check a factual claim: SUPPORTED, CONTRADICTED or NOT_ENOUGH_INFO, with the evidence."""
        with service.locked():
            names = who.search_namespaces(None)
            return verify_claim(service.agent, claim, names[0], names[1:]).to_json()

    @guarded
    def history(subject: str) -> str:
        """Edits and knowledge-graph assertions about a subject, newest first."""
        return _dump([edit_out(r).model_dump(mode="json") for r in service.history(who, subject)])

    @guarded
    def remember(statement: str) -> str:
        """Tell a fact in plain English ('The CEO of Acme Corp is Jane Roe.'); returns the edit id."""
        return _dump(tell_out(service.tell(who, statement)).model_dump(mode="json"))

    @guarded
    def forget(edit_id: str) -> str:
        """Roll back an edit by its id (as returned by remember), restoring what it replaced."""
        done = service.rollback(who, edit_id)
        return _dump({"edit_id": done.edit_id, "message": done.message})

    @guarded
    def quarantine(status: str = "pending") -> str:
        """Statements held for review (pending, approved, rejected or all): who, when, namespace, what, why."""
        from agent.server._routes_review import quarantine_out

        items = service.quarantine(who, None if status == "all" else status)
        return _dump([quarantine_out(q).model_dump(mode="json") for q in items])

    @guarded
    def review(item_id: str, accept: bool) -> str:
        """Accept (apply as its author's edit) or reject a held statement by its id (q-...)."""
        from agent.server._routes_review import quarantine_out

        item, result = service.review(who, item_id, accept)
        applied = None if result is None else tell_out(result).model_dump(mode="json")
        return _dump({"item": quarantine_out(item).model_dump(mode="json"), "applied": applied})

    server.add_tool(ask, name="ask", annotations=reading)
    server.add_tool(search_memory, name="search_memory", annotations=reading)
    server.add_tool(verify_claim_tool, name="verify_claim", annotations=reading)
    server.add_tool(history, name="history", annotations=reading)
    if who.can_edit:
        server.add_tool(remember, name="remember", annotations=adding)
        server.add_tool(forget, name="forget", annotations=removing)
    if who.role == "admin":
        server.add_tool(quarantine, name="quarantine", annotations=reading)
        server.add_tool(review, name="review", annotations=adding)
    return server
