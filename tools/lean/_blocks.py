"""Lean decoder blocks holding another model's parameters: for code that runs some blocks of a ``transformers``
model itself (the value fit of ROME / MEMIT runs the blocks above the edited MLP, :mod:`tools.edit`).

:func:`block_sharing` builds :mod:`tools.lean`'s block for one layer without allocating weights and gives it the
``transformers`` block's own parameter objects (the names are the checkpoint's in both), so it computes what that
block computes, on packed rows (:class:`~tools.lean._common.Packing`), and sees any change made to the weights.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from tools.lean import _gpt2, _llama

__all__ = ["block_parts", "block_sharing", "blocks_supported"]


def blocks_supported(family: str, config: Any) -> bool:
    """Whether :func:`block_sharing` reproduces the blocks of a ``family`` (``"gpt2"``, ``"llama"``) model."""
    if family == "gpt2":
        return _gpt2.supports(config)
    if family == "llama":
        rope = getattr(config, "rope_parameters", None)
        if rope is not None and getattr(config, "rope_scaling", None) == rope:  # transformers 5 spells it twice
            config = SimpleNamespace(**{**vars(config), "rope_scaling": None})
        return _llama.supports(config)
    return False


def block_sharing(family: str, config: Any, layer: int, block: nn.Module) -> nn.Module | None:
    """The lean block of ``layer`` holding ``block``'s parameters (the same objects, with their ``requires_grad``);
    ``None`` when a parameter of the lean block has no counterpart of the same name and shape in ``block``."""
    with torch.device("meta"):
        lean: nn.Module = _gpt2.Block(config, layer) if family == "gpt2" else _llama.Layer(config, layer)
    theirs = dict(block.named_parameters())
    mine = dict(lean.named_parameters())
    if any(name not in theirs or theirs[name].shape != p.shape for name, p in mine.items()):
        return None
    for name in mine:  # the very objects (load_state_dict(assign=True) would wrap them in new parameters)
        owner, _, leaf = name.rpartition(".")
        setattr(lean.get_submodule(owner) if owner else lean, leaf, theirs[name])
    return lean


def block_parts(block: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """A lean block's ``(first norm, attention, second norm, MLP)``: the block is ``x + attn(norm1(x))`` then
    ``x + mlp(norm2(x))``."""
    if isinstance(block, _gpt2.Block):
        return block.ln_1, block.attn, block.ln_2, block.mlp
    if isinstance(block, _llama.Layer):
        return block.input_layernorm, block.self_attn, block.post_attention_layernorm, block.mlp
    raise TypeError(f"not a lean block: {type(block).__name__}")
