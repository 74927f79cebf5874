"""``/v1/admin/detox``: admins apply a detox edit (DINM / FT-L) to the served model, and roll it back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES
from agent.server._schemas import DetoxOut, DetoxRequest, DetoxRollbackOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin/detox", responses=ERROR_RESPONSES, tags=["admin"])
EditId = Annotated[str, Path(pattern=r"^x-[0-9a-f]{12}$", description="a weight edit's id, x- and 12 hex digits")]


@router.post("", response_model=DetoxOut, summary="Apply one detox edit to the served model (admins; journaled)")
def detox(body: DetoxRequest, who: Caller, state: State) -> DetoxOut:
    done = state.service.detox(
        who, body.adversarial_input, body.safe_response, body.unsafe_response, body.method, body.layer
    )
    return DetoxOut(edit_id=done.edit_id, method=done.method, layer=done.layer, before=done.before, after=done.after)


@router.post("/{edit_id}/rollback", response_model=DetoxRollbackOut, summary="Undo a detox edit exactly (admins)")
def rollback(edit_id: EditId, who: Caller, state: State) -> DetoxRollbackOut:
    state.service.rollback_detox(who, edit_id)
    return DetoxRollbackOut(edit_id=edit_id, rolled_back=True)
