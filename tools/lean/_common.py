"""What the lean causal LMs share: the config record, the KV cache, the attention mask and the output.

The masks follow ``transformers``' eager path: an additive float mask, ``0`` where a query may read a key and
the dtype's minimum elsewhere (not ``-inf``: a left-padding query that may read nothing then averages
finite values instead of producing NaN, and its row is never read by a real token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

__all__ = [
    "CausalOutput",
    "KVCache",
    "Packing",
    "Segment",
    "additive_mask",
    "default_positions",
    "head_inputs",
    "read_config",
    "step_inputs",
]


def read_config(path: Path, name: str) -> SimpleNamespace:
    """``path/name`` (a ``config.json`` or ``generation_config.json``) as attributes; empty when absent."""
    file = path / name
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    return SimpleNamespace(**data)


@dataclass(frozen=True)
class CausalOutput:
    """A forward pass's logits, ``(B, T, V)`` (``T`` = 1 with ``logits_to_keep=1``), and the final hidden states
    ``(n, C)`` (after the last norm: the output head's inputs) at the ``n`` positions ``hidden_at`` asked for."""

    logits: torch.Tensor
    hidden: torch.Tensor | None = None


class KVCache:
    """Keys and values per layer, ``(B, H, S, D)`` each, grown by :meth:`update` (the interface of
    ``transformers``' ``DynamicCache`` that :func:`tools.lm._greedy.greedy_rows` calls)."""

    def __init__(self) -> None:
        self._layers: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._layers)

    def seen(self) -> int:
        """Positions already cached (0 before the first forward pass)."""
        return self._layers[0][0].shape[2] if 0 in self._layers else 0

    def update(self, key: torch.Tensor, value: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's ``key`` / ``value`` for ``layer``; return all of that layer's keys and values."""
        if layer in self._layers:
            old_k, old_v = self._layers[layer]
            key, value = torch.cat([old_k, key], dim=2), torch.cat([old_v, value], dim=2)
        self._layers[layer] = (key, value)
        return key, value

    def batch_select_indices(self, index: torch.Tensor) -> None:
        """Keep only the batch rows ``index`` (finished rows leave the batch)."""
        self._layers = {i: (k[index], v[index]) for i, (k, v) in self._layers.items()}


class Packing:
    """The tokens of a forward call as rows ``(N, C)``: the token-wise work (norms, projections, MLP, output
    head) runs on the ``N`` real tokens of a padded batch instead of all ``B * T`` positions, and only
    attention, which needs the sequences apart, sees the padded ``(B, T)`` layout.

    A padding position's query is never read by a real token, and its key and value are closed by the
    mask (the dtype's minimum: ``exp`` of it underflows to exactly 0), so what a real token computes does not
    depend on what stands at the padding positions; here they hold zeros. Each real token's arithmetic is
    the padded batch's (the same rows through the same matrices). Without padding (or one new position
    per row, a decoding step) the rows are the positions themselves and both directions are views.

    Args:
        batch, length: ``B`` and ``T``.
        index: ``(N,)`` the real positions, row-major in the flattened ``(B * T)``; ``None``: all of them.
    """

    def __init__(self, batch: int, length: int, index: torch.Tensor | None = None) -> None:
        self.batch, self.length, self.index = batch, length, index

    @staticmethod
    def of(attention_mask: torch.Tensor, queries: int) -> Packing:
        """The packing of this step's ``queries`` positions (the last of ``attention_mask``'s)."""
        b = attention_mask.shape[0]
        if queries < 2:  # a decoding step: one new position per row, none of them padding
            return Packing(b, queries)
        real = attention_mask[:, -queries:].reshape(-1).bool()
        return Packing(b, queries) if bool(real.all()) else Packing(b, queries, real.nonzero().squeeze(1))

    @property
    def padded(self) -> bool:
        """Whether padding positions were left out."""
        return self.index is not None

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, ...)`` -> ``(N, ...)``: the real positions, row after row."""
        flat = x.reshape(self.batch * self.length, *x.shape[2:])
        return flat if self.index is None else flat.index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, ...)`` -> ``(B, T, ...)``, zeros at the padding positions."""
        if self.index is None:
            return x.view(self.batch, self.length, *x.shape[1:])
        out = x.new_zeros((self.batch * self.length, *x.shape[1:]))
        return out.index_copy_(0, self.index, x).view(self.batch, self.length, *x.shape[1:])


@dataclass(frozen=True)
class Segment:
    """The tokens of one batch of sequences within a forward call's rows: ``rows`` of them, laid out by
    ``packing``, attending with ``mask`` (additive, ``(B, 1, T, S)``) over ``cache`` (``rope``: LLaMA's cos / sin
    ``(B, T, D)`` of their positions). Several segments share a call's projections, MLP and head (one pass
    over the weights) and attend each within itself."""

    rows: int
    packing: Packing
    mask: torch.Tensor
    cache: KVCache | None
    rope: tuple[torch.Tensor, torch.Tensor] | None = None


def additive_mask(attention_mask: torch.Tensor, queries: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, 1, queries, S)`` additive mask: causal over cache slots (the last ``queries`` of the ``S`` slots
    are this step's) and closed on padding keys (``attention_mask`` ``(B, S)``, 0 = padding)."""
    slots = attention_mask.shape[1]
    if queries == 1:  # a decoding step: the last slot reads every earlier one; only padding is closed
        closed = (attention_mask == 0)[:, None, None, :]  # (B, 1, 1, S)
        return torch.zeros(closed.shape, dtype=dtype, device=attention_mask.device).masked_fill_(
            closed, torch.finfo(dtype).min
        )
    q_slot = torch.arange(slots - queries, slots, device=attention_mask.device)[:, None]  # (Q, 1)
    k_slot = torch.arange(slots, device=attention_mask.device)[None, :]  # (1, S)
    allowed = (k_slot <= q_slot)[None, None] & attention_mask[:, None, None, :].bool()  # (B, 1, Q, S)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def default_positions(attention_mask: torch.Tensor | None, batch: int, queries: int, seen: int) -> torch.Tensor:
    """Position ids ``(B, queries)`` when the caller gives none: the cache slots (as ``transformers``)."""
    device = attention_mask.device if attention_mask is not None else None
    return torch.arange(seen, seen + queries, device=device)[None, :].expand(batch, queries)


def step_inputs(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    cache: KVCache | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention mask ``(B, seen + T)`` and positions ``(B, T)`` of a forward call, defaults filled in.

    No mask attends to every cached and new position; no positions count on from the mask (as ``transformers``).
    """
    b, t = input_ids.shape
    seen = cache.seen() if cache is not None else 0
    if attention_mask is None:
        attention_mask = torch.ones((b, seen + t), dtype=torch.long, device=input_ids.device)
    if position_ids is None:
        position_ids = default_positions(attention_mask, b, t, seen)
    return attention_mask, position_ids


def head_inputs(
    x: torch.Tensor,
    packing: Packing,
    logits_to_keep: int = 0,
    logits_at: torch.Tensor | None = None,
    hidden_at: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The final hidden states whose logits a forward call was asked for: ``(B, k, C)`` for the last
    ``logits_to_keep`` = k positions, ``(n, C)`` for the ``n`` true positions of ``logits_at`` ``(B, T)`` (row-major),
    else all ``(B, T, C)``; ``x`` is ``(N, C)``, the rows of ``packing``. Second, the hidden states at the true
    positions of ``hidden_at`` ``(B, T)``, ``(m, C)`` row-major (``None`` without it): kept for a caller that
    computes their logits later (:meth:`tools.lean.GPT2LMHead.head`), or never."""
    x = packing.unpack(x)
    kept = x[hidden_at] if hidden_at is not None else None
    if logits_at is not None:
        return x[logits_at], kept
    return (x[:, -logits_to_keep:] if logits_to_keep else x), kept
