"""``/v1/ask``, ``/v1/tell``, ``/v1/edits``, ``/v1/edits/{id}/rollback`` and ``/v1/history``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from agent.server._convert import answer_out, edit_out, tell_out
from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES
from agent.server._schemas import (
    NAMESPACE_PATTERN,
    AnswerOut,
    AskRequest,
    EditsOut,
    HistoryOut,
    RollbackOut,
    TellOut,
    TellRequest,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["agent"])
EditId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


@router.post("/ask", response_model=AnswerOut, summary="Answer a question (KG, memory, the model, or abstain)")
def ask(body: AskRequest, who: Caller, state: State) -> AnswerOut:
    return answer_out(state.service.ask(who, body.question, body.namespace))


@router.post("/tell", response_model=TellOut, summary="Tell a fact: it becomes an edit (or is quarantined)")
def tell(body: TellRequest, who: Caller, state: State) -> TellOut:
    return tell_out(state.service.tell(who, body.statement, body.namespace))


@router.get("/edits", response_model=EditsOut, summary="Told edits in the key's namespaces, newest first")
def edits(
    who: Caller,
    state: State,
    namespace: Annotated[str | None, Query(pattern=NAMESPACE_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EditsOut:
    return EditsOut(edits=[edit_out(r) for r in state.service.edits(who, namespace, limit)])


@router.post("/edits/{edit_id}/rollback", response_model=RollbackOut, summary="Undo an edit (admins: anyone's)")
def rollback(edit_id: EditId, who: Caller, state: State) -> RollbackOut:
    done = state.service.rollback(who, edit_id)
    return RollbackOut(
        edit_id=done.edit_id, assertions=done.assertions, memory_versions=done.memory_versions, message=done.message
    )


@router.get("/history", response_model=HistoryOut, summary="Edits and assertions about a subject")
def history(who: Caller, state: State, subject: Annotated[str, Query(min_length=1, max_length=1_000)]) -> HistoryOut:
    return HistoryOut(subject=subject, edits=[edit_out(r) for r in state.service.history(who, subject)])
