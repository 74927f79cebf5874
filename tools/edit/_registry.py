"""Editors and adapters by name. Entries are import paths, so importing the registry loads no method."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tools.errors import InvalidEditError, UnknownEditorError

if TYPE_CHECKING:
    from tools.edit._adapter import EditAdapter
    from tools.edit._protocol import Editor

__all__ = ["adapter_class", "editor_names", "get_editor"]

_EDITORS: dict[str, str] = {
    "dinm": "tools.edit._dinm:DINMEditor",
    "ft-l": "tools.edit._ft:FTLEditor",
    "ft-m": "tools.edit._ft:FTMEditor",
    "rome": "tools.edit._rome:ROMEEditor",
    "memit": "tools.edit._memit:MEMITEditor",
    "mend": "tools.edit._mend:MENDEditor",
    "alphaedit": "tools.edit._alphaedit:AlphaEditEditor",
    "ike": "tools.edit._ike:IKEEditor",
    "lora": "tools.edit._lora:LoRAEditor",
    "serac": "tools.edit._serac:SERACEditor",
    "grace": "tools.edit._grace:GraceEditor",
    "wise": "tools.edit._wise:WiseEditor",
    "wise-retrieve": "tools.edit._wise:WiseRetrieveEditor",
}
_ADAPTERS: dict[str, str] = {
    "grace": "tools.edit._grace:GraceAdapter",
    "wise": "tools.edit._wise:WiseAdapter",
    "dinm-gate": "tools.edit._dinm_gate:DetoxGateAdapter",
    "context": "tools.edit._context:ContextAdapter",
    "counterfactual": "tools.edit._serac_adapter:CounterfactualAdapter",
}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def editor_names() -> list[str]:
    """Registered editor names, sorted."""
    return sorted(_EDITORS)


def get_editor(name: str, **hparams: Any) -> Editor:
    """The editor registered as ``name`` (case-insensitive), with hyperparameter overrides.

    Example:
        >>> rome = get_editor("rome", layers=(1,))  # doctest: +SKIP

    Raises:
        UnknownEditorError: no editor has that name.
        InvalidEditError: an override names no hyperparameter of the method.
    """
    key = name.strip().lower()
    if key not in _EDITORS:
        raise UnknownEditorError(f"unknown editing method {name!r} (known: {', '.join(editor_names())})")
    cls = _load(_EDITORS[key])
    try:
        return cls(**hparams)
    except TypeError as exc:
        raise InvalidEditError(f"{key}: {exc}") from exc


def adapter_class(kind: str) -> type[EditAdapter]:
    """The adapter class registered as ``kind``."""
    if kind not in _ADAPTERS:
        raise InvalidEditError(f"unknown adapter kind {kind!r}")
    return _load(_ADAPTERS[kind])
