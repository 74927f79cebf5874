"""The ``world-zh:test`` / ``world-zh:dev`` audit datasets: the world's Chinese questions (issue 23).

Questions are the Chinese slice's (``zq*`` in ``slice_questions.jsonl``) of the split; each one's category is
``<CKnowEdit category>/<kind>`` (``poetry_next/known``, ``idiom/unanswerable``, ...), so the report gives
hallucination rates per category and per kind.

The working memory is prepared as for ``world:`` datasets (ARCHITECTURE.md's setting: the UNKNOWN facts'
documents and the EDITS, never the KNOWN facts), plus the Chinese slice: each UNKNOWN Chinese fact's
statement in the shared ``world`` namespace after the English documents, and each Chinese edit's statement
(with the new answer) in the edits namespace after the English edits. Both are memory-only items (the Chinese
categories are not KG relations) written through the tell pipeline's bulk door, so each load is one logged
edit of the trusted source ``world``. Item counts per namespace say how far an earlier load got, so calling
:func:`prepare_zh_memory` again writes nothing.

Retrieval of Chinese needs the lexical channel: set ``[memory] fusion = "rrf"`` in the audit's home.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eval.audit._types import CATEGORIES, AuditQuestion

if TYPE_CHECKING:
    from agent.wiring import WorkingMemory

__all__ = ["prepare_world_zh_memory", "prepare_zh_memory", "world_zh_questions"]


def world_zh_questions(world: Any, split: str) -> list[AuditQuestion]:
    """The Chinese questions of ``split`` as audit questions, category ``<category>/<kind>``."""
    return [
        AuditQuestion(
            id=q.id,
            text=q.text,
            answers=tuple(q.answers),
            category=f"{q.relation.removeprefix('zh:')}/{CATEGORIES.get(q.kind, q.kind)}",
            subject=q.subject,
            relation=q.relation,
        )
        for q in world.slice_questions
        if q.id.startswith("zq") and q.split == split
    ]


def _restated(statement: str, old: str, new: str) -> str:
    """``statement`` with its (last) ``old`` answer replaced by ``new``."""
    head, sep, tail = statement.rpartition(old)
    return f"{head}{new}{tail}" if sep else f"{statement}{new}"


def prepare_zh_memory(
    wm: WorkingMemory, world: Any, *, documents_before: int, edits_before: int, edits_scope: str
) -> tuple[int, int]:
    """Write the Chinese slice's UNKNOWN statements and edits after the English ones (see the module docstring).

    Args:
        wm: the audit's working memory, the English world already loaded.
        world: the loaded world.
        documents_before: English documents in the ``world`` namespace (the Chinese ones follow them).
        edits_before: English edits in ``edits_scope``.
        edits_scope: the namespace the edits are written to.

    Returns:
        Chinese documents and edits written now.
    """
    from agent.config import TellSettings
    from agent.tell import BulkFact, TellPipeline
    from memory import Scope

    pipeline = TellPipeline.open(wm, TellSettings(interpreter="templates"))
    scopes = wm.memory.scopes()

    def loaded(namespace: str, before: int) -> int:
        scope = Scope(agent_id=namespace)
        return max(0, (wm.memory.count(scope=scope) if scope in scopes else 0) - before)

    facts = {f.id: f for f in world.slice_facts}
    documents = [
        BulkFact(text=f.statement, source=f"world-zh:{f.id}", metadata={"fact_id": f.id})
        for f in world.slice_facts
        if f.language == "zh" and f.split == "unknown"
    ][loaded("world", documents_before) :]
    edits = [
        BulkFact(
            text=_restated(facts[e.fact_id].statement, e.old_answer, e.new_answer),
            source=f"world-zh-edit:{e.id}",
            metadata={"edit_id": e.id, "fact_id": e.fact_id},
        )
        for e in world.slice_edits
        if e.slice == "zh"
    ][loaded(edits_scope, edits_before) :]
    if documents:
        pipeline.load(documents, who="world", namespace="world", text=f"world zh documents ({len(documents)})")
    if edits:
        pipeline.load(edits, who="world", namespace=edits_scope, text=f"world zh edits ({len(edits)})")
    if documents or edits:
        wm.memory.flush()
    return len(documents), len(edits)


def prepare_world_zh_memory(wm: WorkingMemory, world: Any) -> tuple[int, int]:
    """The ``world-zh:`` audit's memory in ``wm``: the English world's (:func:`~eval.audit.prepare_world_memory`:
    UNKNOWN documents, then the EDITS in the edits namespace), then the Chinese slice's (:func:`prepare_zh_memory`).
    Writes only what is missing; returns the Chinese documents and edits written now."""
    from eval.audit._stack import EDITS_SCOPE_ID, prepare_world_memory
    from eval.world._load_memory import world_documents

    prepare_world_memory(wm, world)
    return prepare_zh_memory(
        wm,
        world,
        documents_before=len(world_documents(world)),
        edits_before=len(world.edits),
        edits_scope=EDITS_SCOPE_ID,
    )
