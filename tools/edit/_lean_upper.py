"""The blocks above an edited MLP as lean modules on packed tokens: the value fit's steps, cheaper, bit-identical.

:mod:`tools.edit._upper` already runs only the blocks above the edited MLP at each Adam step, but through
``transformers``' modules on the padded ``(B, T)`` batch: every padding position goes through every projection
and MLP (a fifth to a quarter of the tokens of ROME's prompts), the last block runs its MLP at every position
though only the positions whose logits the loss reads matter, and each call rebuilds the attention mask (and
LLaMA's rotary tables) and passes through the framework's wrappers.

:func:`upper_of` builds, once per chunk, the lean blocks of :mod:`tools.lean` (the same arithmetic as
``transformers``', tests compare logits) holding the model's own parameter objects (nothing is copied, so the
model as edited so far is what runs), the packing of the chunk's real tokens, its additive mask and rotary
tables. :meth:`Upper.picked` then takes block ``L``'s output ``(B, T, d)`` and returns the final-norm hidden
states at the positions the loss reads:

* token-wise work (projections, norms, MLP) runs on the real tokens only (:class:`tools.lean.Packing`: a row's
  arithmetic does not depend on the other rows of a matrix product), attention on the padded layout as before;
  a row's tokens after the last position the loss reads count as padding (causal attention: no position read
  attends to them, their keys are closed by the mask either way);
* the last block runs attention at every position (its keys and values are all needed; the attention kernel's
  result for a query is not the same bit for bit when fewer queries are asked) and its MLP, the residual
  additions and the final norm at the loss's positions only.

The edits are bit-identical to ``transformers``' path (``tests/tools/edit/test_rome.py`` compares them with full
forwards on both reference models). :func:`upper_of` returns ``None`` where this does not hold or is not built
(another family than GPT-2 and LLaMA, a configuration :mod:`tools.lean` does not reproduce, no packed rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tools.edit._family import family_of, get_module
from tools.errors import InvalidEditError
from tools.lean import Packing, Segment, additive_mask, block_parts, block_sharing, blocks_supported

__all__ = ["Upper", "upper_of"]

_MIN_ROWS = 2  # a matrix product of one row takes another kernel (its rounding differs from the batched one)


@dataclass(frozen=True)
class Upper:
    """The blocks above ``L`` for one chunk, ready to run on block ``L``'s output."""

    blocks: tuple[nn.Module, ...]  # lean blocks L+1..n-1 sharing the model's parameters
    norm: nn.Module  # the model's final norm
    packing: Packing  # the chunk's real tokens as rows
    segments: tuple[Segment, ...]  # one: the chunk (mask, rotary tables)
    rows: torch.Tensor  # (P,) packed row of each position the loss reads, in the chunk's pick order

    def picked(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden states ``(P, d)`` at the picked positions of block ``L``'s output ``(B, T, d)``."""
        x = self.packing.pack(hidden)  # (N, d)
        if not self.blocks:
            return self.norm(x.index_select(0, self.rows))
        for block in self.blocks[:-1]:
            x = block(x, self.segments)
        first_norm, attention, second_norm, mlp = block_parts(self.blocks[-1])
        x = (x + attention(first_norm(x), self.segments)).index_select(0, self.rows)  # (P, d)
        return self.norm(x + mlp(second_norm(x)))


def upper_of(
    model: Any,
    layer: int,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    pick_rows: torch.Tensor,
    pick_pos: torch.Tensor,
    dtype: torch.dtype,
) -> Upper | None:
    """The lean blocks above ``layer`` for a batch ``(B, T)`` whose loss reads ``(pick_rows, pick_pos)``; ``None``
    when the shortcut is not built for this model (see the module docstring)."""
    try:
        family = family_of(model)
    except InvalidEditError:
        return None
    config = getattr(model, "config", None)
    if config is None or not blocks_supported(family.name, config):
        return None
    blocks = []
    for at in range(layer + 1, family.n_layers):
        block = block_sharing(family.name, config, at, get_module(model, family.path(family.block, at)))
        if block is None:
            return None
        blocks.append(block)
    norm = _final_norm(model, family.name)
    b, t = input_ids.shape
    # a row's positions after the last one the loss reads are never read (causal attention): left out as padding
    last = torch.full((b,), -1, dtype=torch.long, device=input_ids.device)
    last = last.scatter_reduce(0, pick_rows, pick_pos, "amax")  # (B,) each row's last position read
    needed = attention_mask * (torch.arange(t, device=input_ids.device)[None, :] <= last[:, None])  # (B, T)
    packing = Packing.of(needed, t)
    flat = pick_rows * t + pick_pos  # (P,) row-major positions
    if packing.index is None:
        rows = flat
    else:
        where = torch.full((b * t,), -1, dtype=torch.long, device=input_ids.device)
        where[packing.index] = torch.arange(len(packing.index), device=input_ids.device)
        rows = where[flat]
    n_rows = b * t if packing.index is None else len(packing.index)
    if norm is None or bool((rows < 0).any()) or n_rows < _MIN_ROWS or len(rows) < _MIN_ROWS:
        return None
    rope = None
    if family.name == "llama":
        rotary = getattr(getattr(model, "base_model", None), "rotary_emb", None)
        if rotary is None:
            return None
        positions = torch.arange(t, device=input_ids.device).unsqueeze(0)  # (1, T): transformers' default
        probe = torch.zeros((1, t, 1), dtype=dtype, device=input_ids.device)
        with torch.no_grad():
            rope = tuple(r.detach() for r in rotary(probe, position_ids=positions))
    segment = Segment(n_rows, packing, additive_mask(needed, t, dtype), None, rope)
    return Upper(blocks=tuple(blocks), norm=norm, packing=packing, segments=(segment,), rows=rows)


def _final_norm(model: Any, family: str) -> nn.Module | None:
    base = getattr(model, "base_model", None)
    found = getattr(base, {"gpt2": "ln_f", "llama": "norm"}.get(family, ""), None)
    return found if isinstance(found, nn.Module) else None
