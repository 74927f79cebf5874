"""``/v1/facts``: create, read, update, delete and search facts in the key's namespaces of the vector memory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from agent.server._convert import fact_out, tell_out
from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES
from agent.server._schemas import NAMESPACE_PATTERN, FactCreate, FactHit, FactOut, FactPatch, FactSearchOut, TellOut
from memory import MemoryItem, Triple

__all__ = ["router"]

router = APIRouter(prefix="/v1/facts", responses=ERROR_RESPONSES, tags=["facts"])
FactId = Annotated[str, Path(pattern=r"^m-[0-9a-f]{16}$", description="a fact id, m- and 16 hex digits")]


@router.post(
    "",
    response_model=FactOut,
    status_code=201,
    responses={202: {"model": TellOut, "description": "held for review (the trust policy): nothing was stored"}},
    summary="Store a fact (and its KG triple, if given), through the same checks as tell",
)
def create(body: FactCreate, who: Caller, state: State) -> FactOut | JSONResponse:
    t = body.triple
    triple = None if t is None else Triple(t.subject, t.relation, t.object)
    stored = state.service.add_fact(who, body.text, body.namespace, triple, body.metadata)
    if isinstance(stored, MemoryItem):
        return fact_out(stored)
    return JSONResponse(tell_out(stored).model_dump(mode="json"), status_code=202)


@router.get("/search", response_model=FactSearchOut, summary="Facts most similar to a query, best first")
def search(
    who: Caller,
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=2_000)],
    namespace: Annotated[str | None, Query(pattern=NAMESPACE_PATTERN)] = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> FactSearchOut:
    hits = state.service.search_facts(who, q, namespace, k)
    return FactSearchOut(hits=[FactHit(fact=fact_out(h.item), score=float(h.score)) for h in hits])


@router.get("/{fact_id}", response_model=FactOut, summary="One fact")
def read(fact_id: FactId, who: Caller, state: State) -> FactOut:
    return fact_out(state.service.get_fact(who, fact_id))


@router.put(
    "/{fact_id}",
    response_model=FactOut,
    responses={202: {"model": TellOut, "description": "held for review (the trust policy): nothing was changed"}},
    summary="A new version of a fact (and of its KG triple, if given), through the same checks as tell",
)
@router.patch(
    "/{fact_id}",
    response_model=FactOut,
    responses={202: {"model": TellOut, "description": "held for review (the trust policy): nothing was changed"}},
    summary="A new version of a fact (given fields only)",
)
def update(fact_id: FactId, body: FactPatch, who: Caller, state: State) -> FactOut | JSONResponse:
    t = body.triple
    triple = None if t is None else Triple(t.subject, t.relation, t.object)
    stored = state.service.update_fact(who, fact_id, body.text, body.metadata, triple)
    if isinstance(stored, MemoryItem):
        return fact_out(stored)
    return JSONResponse(tell_out(stored).model_dump(mode="json"), status_code=202)


@router.delete("/{fact_id}", response_model=FactOut, summary="Delete a fact (kept in history)")
def delete(fact_id: FactId, who: Caller, state: State) -> FactOut:
    return fact_out(state.service.delete_fact(who, fact_id))
