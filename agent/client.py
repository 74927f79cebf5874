"""A Python client for ``factagent serve``: :class:`FactagentClient` (sync) and :class:`AsyncFactagentClient`.

Both mirror the HTTP API one method per endpoint and return its typed pydantic models
(:mod:`agent.server._schemas`). Error bodies become factagent's own exceptions: 404 ->
:class:`~tools.errors.NotFoundError`, 401/403 -> :class:`~tools.errors.PermissionDeniedError`, 429 ->
:class:`~tools.errors.RateLimitedError` (``retry_after``), 409 -> ``ContradictoryStatementError``, other
4xx -> :class:`~tools.errors.InvalidInputError`, 5xx -> :class:`~tools.errors.EndpointStatusError`;
transport failures -> ``EndpointUnreachableError`` / ``EndpointTimeoutError``.

Example:
    >>> with FactagentClient("http://127.0.0.1:8765", api_key="fa-...") as fa:  # doctest: +SKIP
    ...     fa.tell("The CEO of Acme Corp is Jane Roe.").edit_id
    ...     fa.ask("Who is the CEO of Acme Corp?").text
    'e-7f3a01c2'
    'Jane Roe'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from agent.server._schemas import (
    AnswerOut,
    AuditJobOut,
    AuditRequest,
    EditsOut,
    EditTriplesOut,
    FactOut,
    FactSearchOut,
    HealthOut,
    HistoryOut,
    RollbackOut,
    TellOut,
    TripleModel,
)
from tools.errors import (
    ContradictoryStatementError,
    EndpointStatusError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    FactagentError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)

__all__ = ["AsyncFactagentClient", "FactagentClient"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class _Call:
    """One request: method, path, query, JSON body, and the model of the reply."""

    method: str
    path: str
    model: type[BaseModel]
    params: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _error(response: httpx.Response) -> FactagentError:
    try:
        detail = response.json()["error"]
        message, retry = str(detail["message"]), detail.get("retry_after")
    except (ValueError, KeyError, TypeError):
        message, retry = response.text[:500] or response.reason_phrase, None
    status = response.status_code
    if status == 404:
        return NotFoundError(message)
    if status in (401, 403):
        return PermissionDeniedError(message)
    if status == 429:
        return RateLimitedError(message, float(retry or response.headers.get("Retry-After", 1)))
    if status == 409:
        return ContradictoryStatementError(message)
    if 400 <= status < 500:
        return InvalidInputError(message)
    return EndpointStatusError(f"{status}: {message}", status)


def _parse(call: _Call, response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise _error(response)
    return call.model.model_validate(response.json())


class _Calls:
    """The API's endpoints as :class:`_Call` values (shared by both clients)."""

    @staticmethod
    def ask(question: str, namespace: str | None) -> _Call:
        return _Call("POST", "/v1/ask", AnswerOut, json=_clean({"question": question, "namespace": namespace}))

    @staticmethod
    def tell(statement: str, namespace: str | None) -> _Call:
        return _Call("POST", "/v1/tell", TellOut, json=_clean({"statement": statement, "namespace": namespace}))

    @staticmethod
    def add_fact(
        text: str, namespace: str | None, triple: TripleModel | None, metadata: dict[str, Any] | None
    ) -> _Call:
        body = _clean({"text": text, "namespace": namespace, "metadata": metadata})
        if triple is not None:
            body["triple"] = triple.model_dump()
        return _Call("POST", "/v1/facts", FactOut, json=body)

    @staticmethod
    def update_fact(fact_id: str, text: str | None, metadata: dict[str, Any] | None) -> _Call:
        return _Call("PATCH", f"/v1/facts/{fact_id}", FactOut, json=_clean({"text": text, "metadata": metadata}))

    @staticmethod
    def search(q: str, namespace: str | None, k: int) -> _Call:
        return _Call("GET", "/v1/facts/search", FactSearchOut, params=_clean({"q": q, "namespace": namespace, "k": k}))

    @staticmethod
    def edits(namespace: str | None, limit: int, offset: int = 0) -> _Call:
        params = _clean({"namespace": namespace, "limit": limit, "offset": offset or None})
        return _Call("GET", "/v1/edits", EditsOut, params=params)

    @staticmethod
    def edit_triples(edit_id: str, offset: int, limit: int) -> _Call:
        params = {"offset": offset, "limit": limit}
        return _Call("GET", f"/v1/edits/{edit_id}/triples", EditTriplesOut, params=params)


class FactagentClient:
    """A synchronous client (``httpx.Client``); use it as a context manager or call :meth:`close`.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8765``.
        api_key: a key from the server's keys file.
        timeout: seconds per request.
        transport: an ``httpx`` transport (tests pass ``httpx.MockTransport`` or an ASGI transport).
    """

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    def _send(self, call: _Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TimeoutException as exc:
            raise EndpointTimeoutError(f"{call.method} {call.path}: no answer in time") from exc
        except httpx.TransportError as exc:
            raise EndpointUnreachableError(f"{call.method} {call.path}: {exc}") from exc
        return _parse(call, response)

    def ask(self, question: str, namespace: str | None = None) -> AnswerOut:
        """The agent's answer (``action == "abstain"`` when it declines)."""
        return self._send(_Calls.ask(question, namespace))

    def tell(self, statement: str, namespace: str | None = None) -> TellOut:
        """Tell a fact; ``status`` says whether it was applied (``edit_id``) or quarantined."""
        return self._send(_Calls.tell(statement, namespace))

    def add_fact(
        self, text: str, namespace: str | None = None, triple: TripleModel | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> FactOut:  # fmt: skip
        return self._send(_Calls.add_fact(text, namespace, triple, metadata))

    def get_fact(self, fact_id: str) -> FactOut:
        return self._send(_Call("GET", f"/v1/facts/{fact_id}", FactOut))

    def update_fact(self, fact_id: str, text: str | None = None, metadata: dict[str, Any] | None = None) -> FactOut:
        return self._send(_Calls.update_fact(fact_id, text, metadata))

    def delete_fact(self, fact_id: str) -> FactOut:
        return self._send(_Call("DELETE", f"/v1/facts/{fact_id}", FactOut))

    def search_facts(self, q: str, namespace: str | None = None, k: int = 10) -> FactSearchOut:
        return self._send(_Calls.search(q, namespace, k))

    def edits(self, namespace: str | None = None, limit: int = 100, offset: int = 0) -> EditsOut:
        """Edits newest first; ``EditsOut.next_offset`` is the ``offset`` of the next page (``None``: last)."""
        return self._send(_Calls.edits(namespace, limit, offset))

    def edit_triples(self, edit_id: str, offset: int = 0, limit: int = 100) -> EditTriplesOut:
        """One page of the facts an edit states (a bulk load states many)."""
        return self._send(_Calls.edit_triples(edit_id, offset, limit))

    def rollback(self, edit_id: str) -> RollbackOut:
        return self._send(_Call("POST", f"/v1/edits/{edit_id}/rollback", RollbackOut))

    def history(self, subject: str) -> HistoryOut:
        return self._send(_Call("GET", "/v1/history", HistoryOut, params={"subject": subject}))

    def start_audit(self, request: AuditRequest | None = None) -> AuditJobOut:
        body = (request or AuditRequest()).model_dump()
        return self._send(_Call("POST", "/v1/audits", AuditJobOut, json=body))

    def audit(self, job_id: str) -> AuditJobOut:
        return self._send(_Call("GET", f"/v1/audits/{job_id}", AuditJobOut))

    def health(self) -> HealthOut:
        return self._send(_Call("GET", "/v1/health", HealthOut))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FactagentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFactagentClient:
    """The asynchronous twin of :class:`FactagentClient` (``httpx.AsyncClient``; same methods, awaited)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 60.0, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, transport=transport)

    async def _send(self, call: _Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, params=call.params, json=call.json)
        except httpx.TimeoutException as exc:
            raise EndpointTimeoutError(f"{call.method} {call.path}: no answer in time") from exc
        except httpx.TransportError as exc:
            raise EndpointUnreachableError(f"{call.method} {call.path}: {exc}") from exc
        return _parse(call, response)

    async def ask(self, question: str, namespace: str | None = None) -> AnswerOut:
        return await self._send(_Calls.ask(question, namespace))

    async def tell(self, statement: str, namespace: str | None = None) -> TellOut:
        return await self._send(_Calls.tell(statement, namespace))

    async def add_fact(
        self, text: str, namespace: str | None = None, triple: TripleModel | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> FactOut:  # fmt: skip
        return await self._send(_Calls.add_fact(text, namespace, triple, metadata))

    async def get_fact(self, fact_id: str) -> FactOut:
        return await self._send(_Call("GET", f"/v1/facts/{fact_id}", FactOut))

    async def update_fact(
        self, fact_id: str, text: str | None = None, metadata: dict[str, Any] | None = None
    ) -> FactOut:
        return await self._send(_Calls.update_fact(fact_id, text, metadata))

    async def delete_fact(self, fact_id: str) -> FactOut:
        return await self._send(_Call("DELETE", f"/v1/facts/{fact_id}", FactOut))

    async def search_facts(self, q: str, namespace: str | None = None, k: int = 10) -> FactSearchOut:
        return await self._send(_Calls.search(q, namespace, k))

    async def edits(self, namespace: str | None = None, limit: int = 100, offset: int = 0) -> EditsOut:
        return await self._send(_Calls.edits(namespace, limit, offset))

    async def edit_triples(self, edit_id: str, offset: int = 0, limit: int = 100) -> EditTriplesOut:
        return await self._send(_Calls.edit_triples(edit_id, offset, limit))

    async def rollback(self, edit_id: str) -> RollbackOut:
        return await self._send(_Call("POST", f"/v1/edits/{edit_id}/rollback", RollbackOut))

    async def history(self, subject: str) -> HistoryOut:
        return await self._send(_Call("GET", "/v1/history", HistoryOut, params={"subject": subject}))

    async def start_audit(self, request: AuditRequest | None = None) -> AuditJobOut:
        body = (request or AuditRequest()).model_dump()
        return await self._send(_Call("POST", "/v1/audits", AuditJobOut, json=body))

    async def audit(self, job_id: str) -> AuditJobOut:
        return await self._send(_Call("GET", f"/v1/audits/{job_id}", AuditJobOut))

    async def health(self) -> HealthOut:
        return await self._send(_Call("GET", "/v1/health", HealthOut))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncFactagentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
