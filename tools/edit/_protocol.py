"""The ``Editor`` seam: compute a delta without touching the model, then apply it through the journal.

Every method (FT-L/FT-M, ROME, MEMIT, AlphaEdit, MEND, LoRA, GRACE, WISE, IKE, SERAC) implements :class:`Editor`;
most derive from :class:`BaseEditor`, which resolves hyperparameters for the model's family, checks the batch, maps
out-of-memory errors, and applies deltas through :func:`~tools.edit.journal_for`.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import torch

from tools.edit._delta import EditDelta
from tools.edit._family import ModelFamily, check_layers, family_of
from tools.edit._journal import EditHandle, journal_for
from tools.edit._request import EditRequest, check_fits_context
from tools.edit._stats import SecondMoment, second_moment
from tools.errors import EditBatchTooLargeError, InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["BaseEditor", "Editor", "HParams", "KnowledgeLocator", "frozen_model", "model_device_dtype"]


@runtime_checkable
class Editor(Protocol):
    """A parametric editing method."""

    name: str

    def compute(self, model: LocalLanguageModel, requests: Sequence[EditRequest]) -> EditDelta:
        """The change that makes ``model`` produce each request's target. ``model`` is left untouched.

        Raises:
            InvalidEditError: bad requests or settings (layer out of range, ...).
            NonFiniteUpdateError: the computed update is not finite.
            EditBatchTooLargeError: too many requests for the method or for memory.
        """
        ...

    def apply(self, model: LocalLanguageModel, delta: EditDelta) -> EditHandle:
        """Apply ``delta`` to ``model`` and journal it; the handle rolls it back."""
        ...


class HParams(Protocol):
    """What every hyperparameter dataclass offers: frozen, with defaults per architecture family."""

    @property
    def layers(self) -> tuple[int, ...]: ...  # read-only, so frozen dataclasses match

    @classmethod
    def for_family(cls, family: ModelFamily) -> Any: ...


H = TypeVar("H", bound=HParams)


@runtime_checkable
class KnowledgeLocator(Protocol):
    """Where a model keeps the facts of some edit requests (``layers="auto"``; e.g. ``tools.circuits``).

    ``rank_layers`` returns MLP layer indices of ``model``, most important first; it must not change the
    model.
    """

    def rank_layers(self, model: LocalLanguageModel, requests: tuple[EditRequest, ...]) -> tuple[int, ...]: ...


class BaseEditor(Generic[H]):
    """Shared plumbing of the editors.

    Args:
        hparams: a complete hyperparameter object; when ``None`` the family defaults of the model are used.
        corpus: plain-text sentences for methods that need statistics of the model's activations (ROME and
            MEMIT's key covariance, WISE's irrelevant inputs); the evaluation and agent layers pass the
            reference world's documents. Methods that need one raise :class:`InvalidEditError` without it.
        corpus_name: a stable name of ``corpus`` for cache keys (a hash of the texts when empty).
        cache_dir: where computed statistics are cached on disk (no caching when ``None``).
        locator: ranks the model's layers for ``layers="auto"``: the method then edits as many layers as its
            default, the best-ranked ones (:class:`InvalidEditError` when ``"auto"`` is asked without one).
        **overrides: individual fields replaced on top (``layers=(2,)``), checked against the dataclass.
    """

    name: ClassVar[str]
    hparams_class: ClassVar[type]
    max_batch: ClassVar[int] = 10_000
    # recompute this method's later edits when an earlier one is rolled back (tools.edit._journal, "replay"):
    # for methods whose deltas are fitted with the earlier edits' constraints in place
    replay_on_rollback: ClassVar[bool] = False

    def __init__(
        self,
        hparams: H | None = None,
        *,
        corpus: Sequence[str] | None = None,
        corpus_name: str = "",
        cache_dir: str | Path | None = None,
        locator: KnowledgeLocator | None = None,
        **overrides: Any,
    ) -> None:
        known = {f.name for f in dataclasses.fields(self.hparams_class)}
        unknown = set(overrides) - known
        if unknown:
            raise InvalidEditError(f"{self.name}: unknown hyperparameter(s) {sorted(unknown)} (known: {sorted(known)})")
        self._auto_layers = overrides.get("layers") == "auto"
        if self._auto_layers:
            if locator is None:
                raise InvalidEditError(f"{self.name}: layers='auto' needs a knowledge locator (locator=)")
            del overrides["layers"]
        elif "layers" in overrides:
            overrides["layers"] = tuple(overrides["layers"])
        self.locator = locator
        self._hparams = hparams
        self._overrides = overrides
        self.corpus = tuple(corpus) if corpus is not None else None
        self.corpus_name = corpus_name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    def key_moment(self, model: LocalLanguageModel, layer: int, max_texts: int = 100_000) -> SecondMoment:
        """``E[k k^T]`` of the MLP keys at ``layer`` over this editor's corpus (cached as :func:`second_moment`)."""
        return second_moment(
            model,
            layer,
            corpus=self.corpus,
            corpus_name=self.corpus_name,
            cache_dir=self.cache_dir,
            max_texts=max_texts,
        )

    def hparams_for(self, model: LocalLanguageModel, requests: Sequence[EditRequest] = ()) -> H:
        """The hyperparameters used on ``model``: family defaults, or the given object, plus overrides.

        With ``layers="auto"`` the layers are the locator's best for ``requests`` (as many as the default).
        """
        family = family_of(model.model)
        defaults: Any = self.hparams_class
        base = self._hparams if self._hparams is not None else defaults.for_family(family)
        hp: H = dataclasses.replace(base, **self._overrides) if self._overrides else base  # type: ignore[type-var]
        if self._auto_layers and self.locator is not None:
            ranked = self.locator.rank_layers(model, tuple(requests))
            hp = dataclasses.replace(hp, layers=tuple(sorted(ranked[: len(hp.layers)])))  # type: ignore[type-var]
        check_layers(family, hp.layers)
        return hp

    def check_requests(self, requests: Sequence[EditRequest]) -> tuple[EditRequest, ...]:
        """The requests as a tuple; raises on an empty batch or one over :attr:`max_batch`."""
        batch = tuple(requests)
        if not batch:
            raise InvalidEditError(f"{self.name}: no edit requests given")
        for req in batch:
            if not isinstance(req, EditRequest):
                raise InvalidEditError(f"{self.name}: expected EditRequest, got {type(req).__name__}")
        if len(batch) > self.max_batch:
            raise EditBatchTooLargeError(
                f"{self.name}: {len(batch)} requests exceed the method's batch limit of {self.max_batch}"
            )
        return batch

    def compute(self, model: LocalLanguageModel, requests: Sequence[EditRequest]) -> EditDelta:
        """Validate, then run :meth:`_compute` with the model frozen and out-of-memory errors mapped."""
        batch = self.check_requests(requests)
        check_fits_context(model.tokenizer, model.model, batch)
        hp = self.hparams_for(model, batch)
        with frozen_model(model.model), _memory_guard(self.name, len(batch)):
            return self._compute(model, batch, hp)

    def _compute(self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: H) -> EditDelta:
        raise NotImplementedError

    def apply(self, model: LocalLanguageModel, delta: EditDelta) -> EditHandle:
        """Apply through the model's journal (replayable when :attr:`replay_on_rollback` is set)."""
        recompute = self._recompute_for(model, delta.requests) if self.replay_on_rollback else None
        return journal_for(model.model).apply(delta, recompute=recompute)

    def _recompute_for(self, model: LocalLanguageModel, requests: tuple[EditRequest, ...]) -> Callable[[], EditDelta]:
        """A closure computing this edit again on the model as it then is (held weakly: no reference cycle)."""
        model_ref = weakref.ref(model)

        def recompute() -> EditDelta:
            lm = model_ref()
            if lm is None:  # pragma: no cover - the journal outlived the language model
                raise InvalidEditError(f"{self.name}: the model of this edit no longer exists")
            return self.compute(lm, requests)

        return recompute

    def edit(self, model: LocalLanguageModel, requests: Sequence[EditRequest]) -> EditHandle:
        """:meth:`compute` then :meth:`apply`."""
        return self.apply(model, self.compute(model, requests))


@contextmanager
def frozen_model(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and ``requires_grad=False`` on every parameter inside; both restored on exit.

    Editors optimise their own tensors (a value vector, a copy of a layer), never the model's parameters.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


@contextmanager
def _memory_guard(method: str, n: int) -> Iterator[None]:
    try:
        yield
    except (torch.OutOfMemoryError, MemoryError) as exc:
        raise EditBatchTooLargeError(
            f"{method}: a batch of {n} request(s) does not fit in memory; split it into smaller batches"
        ) from exc


def model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model's weights live and their dtype (editors follow them, never a literal device)."""
    param = next(model.parameters())
    return param.device, param.dtype
