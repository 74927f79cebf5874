"""``/v1/quarantine``: admins list, accept and reject statements held for review (the trust policy's queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Path, Query

from agent.server._convert import tell_out, triples_out
from agent.server._deps import Caller, State
from agent.server._errors import ERROR_RESPONSES
from agent.server._schemas import QuarantineListOut, QuarantineOut, ReviewOut

if TYPE_CHECKING:
    from agent.tell import QuarantineItem

__all__ = ["quarantine_out", "router"]

router = APIRouter(prefix="/v1/quarantine", responses=ERROR_RESPONSES, tags=["review"])
ItemId = Annotated[str, Path(pattern=r"^q-[0-9a-f]{8}$", description="a held statement's id, q- and 8 hex digits")]


def quarantine_out(q: QuarantineItem) -> QuarantineOut:
    return QuarantineOut(
        id=q.id, user=q.user, created_at=q.created_at, namespace=q.namespace, text=q.text,
        triples=triples_out(q.triples), reason=q.reason, status=q.status, reviewed_by=q.reviewed_by,
        edit_id=q.edit_id, metadata=dict(q.metadata),
    )  # fmt: skip


@router.get("", response_model=QuarantineListOut, summary="Held statements, oldest first (admins)")
def listing(
    who: Caller,
    state: State,
    status: Annotated[Literal["pending", "approved", "rejected", "all"], Query()] = "pending",
) -> QuarantineListOut:
    items = state.service.quarantine(who, None if status == "all" else status)
    return QuarantineListOut(items=[quarantine_out(q) for q in items])


@router.post("/{item_id}/accept", response_model=ReviewOut, summary="Apply a held statement as its author's edit")
def accept(item_id: ItemId, who: Caller, state: State) -> ReviewOut:
    item, result = state.service.review(who, item_id, accept=True)
    return ReviewOut(item=quarantine_out(item), applied=None if result is None else tell_out(result))


@router.post("/{item_id}/reject", response_model=ReviewOut, summary="Reject a held statement (nothing changes)")
def reject(item_id: ItemId, who: Caller, state: State) -> ReviewOut:
    item, _ = state.service.review(who, item_id, accept=False)
    return ReviewOut(item=quarantine_out(item))
