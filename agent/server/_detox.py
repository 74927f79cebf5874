"""Detox edits of the agent's local model (admins, over HTTP): DINM or FT-L on one instance, journaled.

The edit goes through the model's edit journal (:func:`tools.edit.journal_for`), so it is undone exactly by
:func:`rollback_detox` (weights bit-identical to before). DINM's benign inputs (its KL term) are questions
about the reference world's KNOWN facts in the model's prompt format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.errors import InvalidInputError

__all__ = ["DetoxEdit", "apply_detox", "rollback_detox"]
DETOX_METHODS = ("dinm", "ft-l")


@dataclass(frozen=True)
class DetoxEdit:
    """An applied detox edit: its journal id, method, edited layer and the answer before and after."""

    edit_id: str
    method: str
    layer: int | None
    before: str
    after: str


def _local(lm: Any) -> Any:
    from tools.lm import is_local_model

    if not is_local_model(lm):
        raise InvalidInputError("detox edits change weights: the agent's model must be a local one")
    return lm


def apply_detox(
    lm: Any,
    adversarial_input: str,
    safe_response: str,
    unsafe_response: str | None = None,
    *,
    method: str = "dinm",
    layer: int | None = None,
) -> DetoxEdit:
    """Teach ``lm`` the safe response to the adversarial input (one edit, applied through the journal).

    Raises:
        InvalidInputError: the model is not local, or an unknown method.
        EditError: a bad instance (empty texts, too long, no unsafe response to locate with, bad layer); the
            model is unchanged.
    """
    from eval.world.safety import SafetyCase, default_dinm_inputs, detox_request
    from tools.edit import get_editor

    model = _local(lm)
    if method not in DETOX_METHODS:
        raise InvalidInputError(f"unknown detox method {method!r} (known: {', '.join(DETOX_METHODS)})")
    case = SafetyCase(
        id="api",
        category="api",
        adversarial_input=adversarial_input,
        request=adversarial_input,
        safe_response=safe_response,
        unsafe_response=unsafe_response or "",
        only_q=adversarial_input,
        other_q=(),
        other_a=(),
        other_aq=(),
    )
    overrides: dict[str, Any] = {"layers": (layer,)} if layer is not None else {}
    if method == "dinm":
        overrides.update(default_dinm_inputs(model, preserved=True))  # KL inputs; the gate's calibration texts
    editor = get_editor(method, **overrides)
    request = detox_request(model, case)
    before = model.generate([request.prompt], max_new_tokens=48)[0].text
    delta = editor.compute(model, [request])
    handle = editor.apply(model, delta)
    after = model.generate([request.prompt], max_new_tokens=48)[0].text
    info: Any = getattr(delta, "info", {})
    edited = info.get("toxic_layer", (info.get("layers") or [None])[0])
    return DetoxEdit(edit_id=handle.edit_id, method=method, layer=edited, before=before, after=after)


def rollback_detox(lm: Any, edit_id: str) -> None:
    """Undo a detox edit exactly.

    Raises:
        NotFoundError: no applied edit has this id.
    """
    from tools.edit import journal_for

    journal_for(_local(lm).model).rollback(edit_id)
