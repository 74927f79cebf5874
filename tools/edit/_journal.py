"""The edit journal: every applied edit, and exact rollback of any of them.

A journal belongs to one torch model (:func:`journal_for`). Applying a :class:`~tools.edit._delta.WeightDelta`
first copies the original value of every parameter it touches (once per parameter), then adds the update.
Rolling back edit ``k`` recomputes each parameter it touched as ``original + sum of the remaining updates``
in their original order, so:

* rolling back every edit restores the original weights **bit for bit**;
* after rolling back edit ``k`` of ``n``, the weights equal exactly what applying the other ``n - 1``
  deltas to the original model gives. Whether those deltas still do their job is method-specific: FT, ROME
  and MEMIT deltas computed *after* edit ``k`` were fitted on a model that contained it (see the editors'
  docstrings; tests measure the other edits staying effective);
* **replay**: an entry applied with a ``recompute`` callable (editors whose ``replay_on_rollback`` is set,
  e.g. AlphaEdit, whose later deltas are constrained by the earlier edits' keys) is not kept as it was when an
  earlier weight edit is rolled back. The journal undoes those later entries and edit ``k``, then computes each
  later entry's delta again on the model as it now is and applies it under its old id, oldest first. This is
  atomic: if any recomputation fails, the weights, the entries and the originals are put back exactly as they
  were and the error is raised. A saved-and-loaded journal has no ``recompute`` (its entries roll back by the
  arithmetic above).

Adapter deltas (GRACE, WISE, IKE and SERAC's context adapter) are handed to the adapter wrapping their module,
which removes an edit's entries on rollback; the adapter is uninstalled, leaving the original module, when its last
edit goes.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
import weakref
from collections.abc import Callable, Mapping
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
    # weights: computes this edit's delta again on the model as it is (replay after an earlier rollback)
    recompute: Callable[[], EditDelta] | None = field(default=None, repr=False, compare=False)

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

    def apply(
        self, delta: EditDelta, edit_id: str | None = None, recompute: Callable[[], EditDelta] | None = None
    ) -> EditHandle:
        """Apply ``delta`` and record it. Validation happens first: on error nothing has changed.

        ``recompute`` (weight deltas only) computes the delta again; given, the edit is replayed when an earlier
        weight edit is rolled back (module docstring).

        Raises:
            InvalidEditError, NonFiniteUpdateError: the delta does not fit the model or is not finite.
        """
        edit_id = edit_id or new_edit_id()
        if any(e.id == edit_id for e in self._entries):
            raise InvalidEditError(f"edit id {edit_id!r} is already in the journal")
        if isinstance(delta, WeightDelta):
            entry = dataclasses.replace(self._apply_weights(edit_id, delta), recompute=recompute)
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
            adapter.attach(model)
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
        later = self._entries[self._entries.index(entry) + 1 :]
        replays = [e for e in later if e.kind == "weights" and e.recompute is not None]
        if entry.kind == "weights" and replays:
            self._rollback_replaying(entry, replays)
            logger.info("rolled back %s edit %s, replayed %d later edit(s)", entry.method, edit_id, len(replays))
            return
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

    def _rollback_replaying(self, entry: JournalEntry, replays: list[JournalEntry]) -> None:
        """Undo ``replays`` and ``entry``, then recompute and re-apply ``replays`` in order; atomic."""
        params = dict(self.model.named_parameters())
        saved_entries, saved_originals = list(self._entries), dict(self.originals)
        touched = {name for e in saved_entries if e.kind == "weights" for name in e.updates}
        saved_params = {name: params[name].detach().clone() for name in touched}
        try:
            for undo in [*reversed(replays), entry]:
                self._rollback_weights(undo)
                self._entries.remove(undo)
            for old in replays:
                assert old.recompute is not None  # selected for it
                delta = old.recompute()
                if not isinstance(delta, WeightDelta):
                    raise InvalidEditError(f"replaying {old.id}: {old.method} recomputed a non-weight delta")
                new = self._apply_weights(old.id, delta)
                self._entries.append(dataclasses.replace(new, created_at=old.created_at, recompute=old.recompute))
        except BaseException:
            with torch.no_grad():
                for name, param in params.items():
                    if name in saved_params:
                        param.copy_(saved_params[name])
                    elif name in self.originals:  # first touched by a failed replay
                        param.copy_(self.originals[name])
            self._entries, self.originals = saved_entries, saved_originals
            raise

    def _rollback_adapter(self, entry: JournalEntry) -> None:
        assert entry.module_path is not None  # set for every adapter entry
        model = self.model
        adapter = get_module(model, entry.module_path)
        if not isinstance(adapter, EditAdapter):  # pragma: no cover - the journal installed it
            raise InvalidEditError(f"{entry.module_path} holds no adapter")
        adapter.remove(entry.id)
        if not adapter.edit_ids():
            adapter.detach()
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
