"""MEND's editor network: per edited weight, a small MLP that turns a fine-tuning gradient into an update.

For a linear map ``W`` ``(out, in)`` and a loss ``L``, the gradient over a sequence is a sum of rank-one terms,
``∇W L = Σ_t δ_t u_tᵀ``, with ``u_t`` the map's input (``in``) and ``δ_t = ∂L/∂(W u_t)`` (``out``) at token ``t``
(Mitchell et al., 2022, "Fast Model Editing at Scale", §3.1). :class:`GradientTransform` maps each pair through
a rank-``r`` residual MLP over the normalised concatenation ``[u_t; δ_t]``:

    z = ([u; δ] - μ) / σ,   h = z + U₂ relu(U₁ z + b₁) + b₂,   [ũ; δ̃] = h,   ΔW = -η · Σ_t δ̃_t ũ_tᵀ

with ``μ``, ``σ`` per-feature statistics of the training gradients (buffers), ``U₂`` initialised at zero so
training starts from the normalised gradient itself, and a learned step ``η = exp(log_lr)`` per weight (MEND's
per-layer learning rate). ``ΔW`` stays factored: ``left = -η δ̃ᵀ`` ``(out, N)``, ``right = ũ`` ``(N, in)``.

One :class:`MendNetwork` holds a transform per edited parameter and saves to / loads from one safetensors file
whose metadata names the layers, the rank and how it was trained (:func:`save_mend`, :func:`load_mend`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tools.errors import InvalidEditError

__all__ = ["MEND_FILE", "GradientTransform", "MendNetwork", "load_mend", "save_mend"]

MEND_FILE = "mend.safetensors"  # the trained editor network, next to the model's own weights


class GradientTransform(nn.Module):
    """The rank-``rank`` residual MLP of one edited weight ``(d_out, d_in)`` (module docstring)."""

    mean: torch.Tensor  # (d_in + d_out,) buffers: the training gradients' per-feature statistics
    std: torch.Tensor

    def __init__(self, d_in: int, d_out: int, rank: int, init_lr: float = 1e-3) -> None:
        super().__init__()
        self.d_in, self.d_out = d_in, d_out
        width = d_in + d_out
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.down = nn.Linear(width, rank)
        self.up = nn.Linear(rank, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.log_lr = nn.Parameter(torch.tensor(float(torch.tensor(init_lr).log())))

    def set_statistics(self, keys: torch.Tensor, grads: torch.Tensor) -> None:
        """Per-feature mean and std of ``[keys; grads]`` ``(N, d_in)``, ``(N, d_out)`` (std floored at 1e-8)."""
        z = torch.cat([keys, grads], dim=1).float()
        self.mean.copy_(z.mean(0))
        self.std.copy_(z.std(0).clamp_min(1e-8))

    def forward(self, keys: torch.Tensor, grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Factors ``left`` ``(d_out, N)`` and ``right`` ``(N, d_in)`` of ``ΔW = left @ right`` from ``N`` pairs."""
        z = (torch.cat([keys, grads], dim=1).float() - self.mean) / self.std  # (N, d_in + d_out)
        h = z + self.up(torch.relu(self.down(z)))
        key_t, grad_t = h[:, : self.d_in], h[:, self.d_in :]
        return -self.log_lr.exp() * grad_t.T, key_t


class MendNetwork(nn.Module):
    """One :class:`GradientTransform` per edited parameter, in ``params`` order.

    ``params`` are parameter names of the edited model (``transformer.h.3.mlp.c_proj.weight``); ``shapes``
    their ``(out, in)`` shapes; ``info`` records how the network was trained (saved with it).
    """

    def __init__(
        self,
        params: tuple[str, ...],
        shapes: tuple[tuple[int, int], ...],
        rank: int,
        info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(params) != len(shapes) or not params:
            raise InvalidEditError("mend: the network needs one (out, in) shape per edited parameter")
        self.params = tuple(params)
        self.shapes = tuple((int(o), int(i)) for o, i in shapes)
        self.rank = int(rank)
        self.info = dict(info or {})
        self.transforms = nn.ModuleList(GradientTransform(i, o, self.rank) for o, i in self.shapes)

    def transform(self, param: str) -> GradientTransform:
        """The transform of one edited parameter."""
        module = self.transforms[self.params.index(param)]
        assert isinstance(module, GradientTransform)
        return module


def save_mend(network: MendNetwork, path: str | Path) -> Path:
    """Write ``network`` as one safetensors file (float32 tensors, layout in the metadata); returns the path."""
    path = Path(path)
    tensors = {k: v.detach().float().contiguous() for k, v in network.state_dict().items()}
    meta = {"params": network.params, "shapes": network.shapes, "rank": network.rank, "info": network.info}
    save_file(tensors, str(path), metadata={"mend": json.dumps(meta, sort_keys=True)})
    return path


def load_mend(path: str | Path) -> MendNetwork:
    """Read a network written by :func:`save_mend`.

    Raises:
        InvalidEditError: no such file, or it is not a MEND network.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidEditError(f"mend: no trained editor network at {path} (build it with `factagent mend-train`)")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        raw = (handle.metadata() or {}).get("mend")
    if raw is None:
        raise InvalidEditError(f"mend: {path} holds no MEND network metadata")
    meta = json.loads(raw)
    network = MendNetwork(
        tuple(meta["params"]), tuple(tuple(s) for s in meta["shapes"]), int(meta["rank"]), meta.get("info")
    )
    network.load_state_dict(load_file(str(path)))
    return network.eval()
