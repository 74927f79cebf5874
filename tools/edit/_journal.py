"""The edit journal: every applied edit, and exact rollback of any of them.

A journal belongs to one torch model (:func:`journal_for`). Applying a :class:`~tools.edit._delta.WeightDelta`
first copies the original value of every parameter it touches (once per parameter), then adds the update.
Rolling back edit ``k`` recomputes each parameter it touched as ``original + sum of the remaining updates``
in their original order, so:

* rolling back every edit restores the original weights **bit for bit**;
* after rolling back edit ``k`` of ``n``, the weights equal exactly what applying the other ``n - 1``
  deltas to the original model gives. Whether those deltas still do their job is method-specific: FT, ROME
  and MEMIT deltas computed *after* edit ``k`` were fitted on a model that contained it (see the editors'
  docstrings; tests measure the other edits staying effective).

Adapter deltas (GRACE, WISE, IKE and SERAC's context adapter) are handed to the adapter wrapping their module,
which removes an edit's entries on rollback; the adapter is uninstalled, leaving the original module, when its last
edit goes.
"""

from __future__ import annotations

import logging
import secrets
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from tools.edit._adapter import EditAdapter
from tools.edit._delta import AdapterDelta, EditDelta, Update, WeightDelta
from tools.edit._family import get_module, set_module
from tools.edit._registry import adapter_class
from tools.edit._request import EditRequest
from tools.errors import InvalidEditError, NotFoundError

__all__ = ["EditHandle", "EditJournal", "JournalEntry", "journal_for"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEntry:
    """One applied edit: id, method, requests, and what it changed."""

    id: str
    method: str
    requests: tuple[EditRequest, ...]
    kind: Literal["weights", "adapter"]
    created_at: float
    updates: Mapping[str, Update] = field(default_factory=dict)  # weights: param name -> update
    module_path: str | None = None  # adapter: the wrapped module
    adapter: str | None = None  # adapter: its kind

    @property
    def params(self) -> tuple[str, ...]:
        """Names of the parameters a weight edit touched."""
        return tuple(self.updates)


@dataclass(frozen=True)
class EditHandle:
    """What :meth:`Editor.apply` returns: the edit's id and a way to undo it."""

    edit_id: str
    method: str
    requests: tuple[EditRequest, ...]
    journal: EditJournal = field(repr=False, compare=False)

    def rollback(self) -> None:
        """Undo this edit (the others stay applied)."""
        self.journal.rollback(self.edit_id)


def new_edit_id() -> str:
    """A fresh journal id (``x-`` + 12 hex digits)."""
    return "x-" + secrets.token_hex(6)


class EditJournal:
    """The applied edits of one model, oldest first."""

    def __init__(self, model: nn.Module) -> None:
        self._model_ref = weakref.ref(model)
        self._entries: list[JournalEntry] = []
        self.originals: dict[str, torch.Tensor] = {}  # param name -> value before the first edit touching it

    @property
    def model(self) -> nn.Module:
        model = self._model_ref()
        if model is None:  # pragma: no cover - the journal outlived its model
            raise RuntimeError("the journal's model no longer exists")
        return model

    @property
    def entries(self) -> list[JournalEntry]:
        """Applied edits, oldest first (a copy)."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, edit_id: str) -> JournalEntry:
        """The entry with this id; raises :class:`NotFoundError`."""
        for entry in self._entries:
            if entry.id == edit_id:
                return entry
        raise NotFoundError(f"no applied edit with id {edit_id!r}")

    def apply(self, delta: EditDelta, edit_id: str | None = None) -> EditHandle:
        """Apply ``delta`` and record it. Validation happens first: on error nothing has changed.

        Raises:
            InvalidEditError, NonFiniteUpdateError: the delta does not fit the model or is not finite.
        """
        edit_id = edit_id or new_edit_id()
        if any(e.id == edit_id for e in self._entries):
            raise InvalidEditError(f"edit id {edit_id!r} is already in the journal")
        if isinstance(delta, WeightDelta):
            entry = self._apply_weights(edit_id, delta)
        else:
            entry = self._apply_adapter(edit_id, delta)
        self._entries.append(entry)
        logger.info("applied %s edit %s (%d request(s))", delta.method, edit_id, len(delta.requests))
        return EditHandle(edit_id, delta.method, delta.requests, self)

    def _apply_weights(self, edit_id: str, delta: WeightDelta) -> JournalEntry:
        model = self.model
        delta.validate(model)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name in delta.updates:
                param = params[name]
                if name not in self.originals:
                    self.originals[name] = param.detach().clone()
                param.add_(delta.dense(name).to(device=param.device, dtype=param.dtype))
        return JournalEntry(edit_id, delta.method, delta.requests, "weights", time.time(), updates=dict(delta.updates))

    def _apply_adapter(self, edit_id: str, delta: AdapterDelta) -> JournalEntry:
        delta.validate()
        model = self.model
        module = get_module(model, delta.module_path)
        cls = adapter_class(delta.adapter)
        if isinstance(module, EditAdapter):
            if not isinstance(module, cls):
                held = module.kind
                raise InvalidEditError(f"{delta.module_path} already holds a {held} adapter, not {delta.adapter}")
            module.add(edit_id, delta.payload)
        else:
            adapter = cls.create(module, delta.config)
            adapter.add(edit_id, delta.payload)  # before installing: a failed add leaves the model untouched
            set_module(model, delta.module_path, adapter)
        return JournalEntry(
            edit_id,
            delta.method,
            delta.requests,
            "adapter",
            time.time(),
            module_path=delta.module_path,
            adapter=delta.adapter,
        )

    def rollback(self, edit_id: str) -> None:
        """Undo one edit; the others stay applied (see the module docstring for exactness).

        Raises:
            NotFoundError: no applied edit has this id.
        """
        entry = self.entry(edit_id)
        if entry.kind == "weights":
            self._rollback_weights(entry)
        else:
            self._rollback_adapter(entry)
        self._entries.remove(entry)
        logger.info("rolled back %s edit %s", entry.method, edit_id)

    def rollback_all(self) -> None:
        """Undo every edit, newest first: weights return bit-identical to the original, adapters are removed."""
        for entry in reversed(list(self._entries)):
            self.rollback(entry.id)

    def _rollback_weights(self, entry: JournalEntry) -> None:
        params = dict(self.model.named_parameters())
        remaining = [e for e in self._entries if e.kind == "weights" and e.id != entry.id]
        with torch.no_grad():
            for name in entry.params:
                param = params[name]
                param.copy_(self.originals[name])
                still = [e for e in remaining if name in e.updates]
                for other in still:
                    update = other.updates[name]
                    dense = update.dense() if not isinstance(update, torch.Tensor) else update
                    param.add_(dense.to(device=param.device, dtype=param.dtype))
                if not still:
                    del self.originals[name]

    def _rollback_adapter(self, entry: JournalEntry) -> None:
        assert entry.module_path is not None  # set for every adapter entry
        model = self.model
        adapter = get_module(model, entry.module_path)
        if not isinstance(adapter, EditAdapter):  # pragma: no cover - the journal installed it
            raise InvalidEditError(f"{entry.module_path} holds no adapter")
        adapter.remove(entry.id)
        if not adapter.edit_ids():
            set_module(model, entry.module_path, adapter.base)

    def adapters(self) -> dict[str, EditAdapter]:
        """Installed adapters by module path."""
        return {name: m for name, m in self.model.named_modules() if isinstance(m, EditAdapter)}

    def restore_entries(self, entries: list[JournalEntry], originals: dict[str, torch.Tensor]) -> None:
        """Reinstate a saved journal's records (used by :func:`~tools.edit.load_edited`; weights already loaded)."""
        self._entries = list(entries)
        self.originals = dict(originals)


_JOURNALS: weakref.WeakKeyDictionary[nn.Module, EditJournal] = weakref.WeakKeyDictionary()


def journal_for(model: nn.Module) -> EditJournal:
    """The journal of ``model`` (created empty on first use)."""
    journal = _JOURNALS.get(model)
    if journal is None:
        journal = EditJournal(model)
        _JOURNALS[model] = journal
    return journal
