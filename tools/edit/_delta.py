"""What an editor computes: weight updates or adapter entries, checked before anything touches the model.

Two kinds of delta:

* :class:`WeightDelta` — additive updates to named parameters (FT, ROME, MEMIT). An update is a dense tensor
  shaped like the parameter, or a :class:`LowRank` product (ROME is rank one; MEMIT's batch of ``B`` is rank
  ``<= B``), stored factored so a journal of many edits stays small.
* :class:`AdapterDelta` — entries for an adapter that wraps one module (GRACE's codebook, WISE's side memory);
  the adapter is installed on first use and removed when its last edit is rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tools.edit._request import EditRequest
from tools.errors import InvalidEditError, NonFiniteUpdateError

__all__ = ["AdapterDelta", "EditDelta", "EditGram", "LowRank", "WeightDelta", "check_finite", "low_rank_for"]


@dataclass(frozen=True)
class LowRank:
    """An update ``left @ right`` laid out like the parameter: ``left`` ``(rows, r)``, ``right`` ``(r, cols)``."""

    left: torch.Tensor
    right: torch.Tensor

    def dense(self) -> torch.Tensor:
        """The full ``(rows, cols)`` matrix."""
        return self.left @ self.right

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.left.shape[0]), int(self.right.shape[1]))


Update = torch.Tensor | LowRank


@dataclass(frozen=True)
class EditGram:
    """The input Gram matrix ``G = shared + K Kᵀ`` of one edited weight's closed-form solve (RegMean's data).

    A batched key-value editor (MEMIT, AlphaEdit) solves ``ΔW G = R Kᵀ`` (``(out, in)`` layout) for its
    update: ``K`` ``(in, m)`` are the keys it wrote (every templated column), ``shared`` ``(in, in)`` the
    part of ``G`` that is the same for every batch solved on one base (MEMIT: ``λ C``; AlphaEdit: ``P λ C P +
    α I``). ``tools.merge``'s RegMean merge reads both (``layout``: how the weight stores ``(out, in)``:
    ``"out_in"`` for ``nn.Linear``, ``"in_out"`` for GPT-2's ``Conv1D``).
    """

    keys: torch.Tensor  # (in, m) float64
    shared: torch.Tensor  # (in, in) float64
    layout: str = "out_in"

    def gram(self) -> torch.Tensor:
        """``shared + K Kᵀ`` ``(in, in)``."""
        return self.shared + self.keys @ self.keys.T


def low_rank_for(module: nn.Module, left_out: torch.Tensor, right_in: torch.Tensor) -> LowRank:
    """A :class:`LowRank` for ``module.weight`` from factors of an ``(out, in)`` update ``left_out @ right_in``.

    GPT-2's ``Conv1D`` stores ``(in, out)``, so its factors are transposed and swapped.
    """
    if type(module).__name__ == "Conv1D":
        return LowRank(right_in.T.contiguous(), left_out.T.contiguous())
    return LowRank(left_out.contiguous(), right_in.contiguous())


def _dense(update: Update) -> torch.Tensor:
    return update.dense() if isinstance(update, LowRank) else update


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise :class:`NonFiniteUpdateError` if ``tensor`` holds NaN or inf."""
    if not bool(torch.isfinite(tensor).all()):
        raise NonFiniteUpdateError(f"the update of {name} contains NaN or inf values; nothing was changed")


@dataclass(frozen=True)
class WeightDelta:
    """Additive parameter updates computed by ``method`` for ``requests``.

    ``updates`` maps parameter names (``model.named_parameters()``) to updates of the same shape.
    ``info`` carries diagnostics (losses, norms) for logs and benchmarks.
    """

    method: str
    requests: tuple[EditRequest, ...]
    updates: Mapping[str, Update]
    info: Mapping[str, Any] = field(default_factory=dict)

    def dense(self, name: str) -> torch.Tensor:
        """The dense update of one parameter."""
        return _dense(self.updates[name])

    def validate(self, model: nn.Module) -> None:
        """Check names, shapes and finiteness against ``model``; raises before anything is changed.

        Raises:
            InvalidEditError: an unknown parameter or a shape mismatch.
            NonFiniteUpdateError: an update holds NaN or inf.
        """
        params = dict(model.named_parameters())
        for name, update in self.updates.items():
            if name not in params:
                raise InvalidEditError(f"{self.method}: the model has no parameter {name!r}")
            if tuple(update.shape) != tuple(params[name].shape):
                raise InvalidEditError(
                    f"{self.method}: update of {name} has shape {tuple(update.shape)}, "
                    f"the parameter {tuple(params[name].shape)}"
                )
            if isinstance(update, LowRank):
                check_finite(name, update.left)
                check_finite(name, update.right)
            check_finite(name, _dense(update))


@dataclass(frozen=True)
class AdapterDelta:
    """Entries for the adapter ``adapter`` (a registered kind) wrapping the module at ``module_path``.

    ``config`` builds the adapter when the module is not yet wrapped; ``payload`` is what the adapter's
    ``add`` consumes (method-specific tensors and numbers).
    """

    method: str
    requests: tuple[EditRequest, ...]
    adapter: str
    module_path: str
    config: Mapping[str, Any]
    payload: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`NonFiniteUpdateError` if any payload tensor (also inside lists and dicts) is not finite."""
        for key, value in self.payload.items():
            for tensor in _tensors(value):
                if tensor.is_floating_point():
                    check_finite(f"{self.module_path} ({key})", tensor)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


EditDelta = WeightDelta | AdapterDelta
