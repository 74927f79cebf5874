"""``/v1/ask``, ``/v1/tell``, ``/v1/edits`` (paged; an edit's facts paged at ``/v1/edits/{id}/triples``),
``/v1/edits/{id}/rollback`` and ``/v1/history``."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query

from agent.server._convert import answer_out, edit_out, tell_out, triples_out
from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES
from agent.server._schemas import (
    NAMESPACE_PATTERN,
    AnswerOut,
    AskRequest,
    EditsOut,
    EditTriplesOut,
    HistoryOut,
    RollbackOut,
    TellOut,
    TellRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["agent"])
EditId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


@router.post("/ask", response_model=AnswerOut, summary="Answer a question (KG, memory, the model, or abstain)")
async def ask(body: AskRequest, who: Caller, state: State) -> AnswerOut:
    # awaited, not run in the thread pool: queued asks (answered in micro-batches) hold no worker thread
    answer = await asyncio.wrap_future(state.service.ask_later(who, body.question, body.namespace))
    return answer_out(answer)


@router.post("/tell", response_model=TellOut, summary="Tell a fact: it becomes an edit (or is quarantined)")
def tell(body: TellRequest, who: Caller, state: State) -> TellOut:
    return tell_out(state.service.tell(who, body.statement, body.namespace))


@router.get("/edits", response_model=EditsOut, summary="Told edits in the key's namespaces, newest first")
def edits(
    who: Caller,
    state: State,
    namespace: Annotated[str | None, Query(pattern=NAMESPACE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> EditsOut:
    page = state.service.edits(who, namespace, limit + 1, offset)  # one more tells whether a next page exists
    more = len(page) > limit
    return EditsOut(edits=[edit_out(r) for r in page[:limit]], next_offset=offset + limit if more else None)


@router.get("/edits/{edit_id}/triples", response_model=EditTriplesOut, summary="Page through an edit's facts")
def edit_triples(
    edit_id: EditId,
    who: Caller,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> EditTriplesOut:
    triples = state.service.edit(who, edit_id).triples
    end = offset + limit
    return EditTriplesOut(
        edit_id=edit_id,
        total=len(triples),
        offset=offset,
        triples=triples_out(triples[offset:end]),
        next_offset=end if end < len(triples) else None,
    )


@router.post("/edits/{edit_id}/rollback", response_model=RollbackOut, summary="Undo an edit (admins: anyone's)")
def rollback(edit_id: EditId, who: Caller, state: State) -> RollbackOut:
    done = state.service.rollback(who, edit_id)
    return RollbackOut(
        edit_id=done.edit_id, assertions=done.assertions, memory_versions=done.memory_versions, message=done.message
    )


@router.get("/history", response_model=HistoryOut, summary="Edits and assertions about a subject")
def history(who: Caller, state: State, subject: Annotated[str, Query(min_length=1, max_length=1_000)]) -> HistoryOut:
    return HistoryOut(subject=subject, edits=[edit_out(r) for r in state.service.history(who, subject)])
