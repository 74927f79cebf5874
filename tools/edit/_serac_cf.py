"""SERAC's counterfactual model: a small transformer that answers an input given the edit it falls under.

Mitchell et al. (2022, "Memory-Based Model Editing at Scale", §3) train a separate, smaller model
``h_ψ(z_e, x)`` on (edit, in-scope input) pairs; the scope classifier sends in-scope inputs to it, the rest to the
base model. Here it is the base model's own architecture cut to its first ``blocks`` blocks (plus the final
norm), fine-tuned on the world's train-split edits (:mod:`tools.edit._serac_train`). It reads the edit's tokens
followed by the input's and returns hidden states ``(B, T, d)`` that go through the base model's (frozen) output
head, so its answers are logits over the base model's vocabulary, read the usual way by every benchmark. The
input embedding is the base model's too (tied to the output head in both reference models); it is not stored.

A file (:data:`SERAC_FILE`, next to the model's weights) holds the blocks and the final norm as float32
safetensors, and in its metadata the block count, the paths inside the inner transformer, the edit template
the model was trained with and how it was trained (:func:`save_counterfactual`, :func:`load_counterfactual`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from tools.edit._family import family_of
from tools.edit._ike import _embed_path, inner_module_path
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = [
    "SERAC_FILE",
    "CounterfactualModel",
    "counterfactual_for",
    "counterfactual_from_base",
    "load_counterfactual",
    "read_counterfactual_meta",
    "save_counterfactual",
]

SERAC_FILE = "serac.safetensors"  # the trained counterfactual model, next to the model's own weights
_KEY = "serac"  # the safetensors metadata entry
_DEFAULT_TEMPLATE = "New Fact: {prompt} {target}\n"  # the edit descriptor z_e the model reads before the input


@dataclass(frozen=True)
class CounterfactualModel:
    """A cut-down copy of the base model's inner transformer and how it reads an edit.

    ``module`` maps ``input_ids`` ``(B, T)`` (with ``attention_mask`` and ``position_ids``) to a
    ``last_hidden_state`` ``(B, T, d)`` for the base model's output head; ``template`` formats an edit
    (``{prompt}``, ``{target}``) as the tokens placed before the input.
    """

    module: nn.Module
    blocks: int  # transformer blocks kept (the base model's first ones)
    layers_path: str  # the block list inside the inner transformer ("h" for GPT-2, "layers" for LLaMA)
    embed_path: str  # the input embedding inside it (shared with the base model, not stored)
    template: str = _DEFAULT_TEMPLATE
    info: Mapping[str, Any] = field(default_factory=dict)  # how it was trained

    def edit_text(self, prompt: str, target: str) -> str:
        """The edit as the model reads it."""
        return self.template.format(prompt=prompt, target=target)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``last_hidden_state`` ``(B, T, d)`` of rows padded on either side (positions count real tokens)."""
        positions = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
        out = self.module(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False)
        return out.last_hidden_state


def _set_block_count(module: nn.Module, layers_path: str, blocks: int) -> None:
    """Keep the first ``blocks`` blocks of ``module`` (and tell its config, which some forwards iterate over)."""
    layers = module.get_submodule(layers_path)
    if not isinstance(layers, nn.ModuleList) or not 1 <= blocks <= len(layers):
        raise InvalidEditError(f"serac: cannot keep {blocks} blocks of {layers_path!r}")
    parent_path, _, name = layers_path.rpartition(".")
    parent = module.get_submodule(parent_path) if parent_path else module
    setattr(parent, name, nn.ModuleList(list(layers)[:blocks]))
    config = getattr(module, "config", None)
    if config is not None:
        config.num_hidden_layers = blocks
        kinds = getattr(config, "layer_types", None)
        if isinstance(kinds, list):
            config.layer_types = kinds[:blocks]


def counterfactual_from_base(
    base: nn.Module, layers_path: str, embed_path: str, blocks: int, template: str = _DEFAULT_TEMPLATE
) -> CounterfactualModel:
    """An untrained counterfactual model: a copy of ``base`` (the inner transformer) cut to its first ``blocks``.

    The copy's input embedding is replaced by ``base``'s own (shared, never trained). Frozen and in eval mode.

    Raises:
        InvalidEditError: ``blocks`` outside ``1..n_layers``, a path that is not in ``base``, or a template
            without ``{prompt}`` and ``{target}``.
    """
    if "{prompt}" not in template or "{target}" not in template:
        raise InvalidEditError("serac: the counterfactual template must contain {prompt} and {target}")
    try:
        embedding = base.get_submodule(embed_path)
    except AttributeError as exc:
        raise InvalidEditError(f"serac: no input embedding at {embed_path!r}") from exc
    module = copy.deepcopy(base)
    try:
        _set_block_count(module, layers_path, blocks)
    except AttributeError as exc:
        raise InvalidEditError(f"serac: no block list at {layers_path!r}") from exc
    parent_path, _, name = embed_path.rpartition(".")
    setattr(module.get_submodule(parent_path) if parent_path else module, name, embedding)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return CounterfactualModel(
        module=module, blocks=blocks, layers_path=layers_path, embed_path=embed_path, template=template
    )


def counterfactual_for(
    model: LocalLanguageModel, blocks: int, template: str = _DEFAULT_TEMPLATE
) -> CounterfactualModel:
    """An untrained counterfactual model for ``model``: its inner transformer's first ``blocks`` blocks."""
    inner = inner_module_path(model)
    block = family_of(model.model).block  # e.g. "transformer.h.{}"
    layers_path = block.split("{}")[0].rstrip(".")[len(inner) + 1 :]
    base = getattr(model.model, inner)
    return counterfactual_from_base(base, layers_path, _embed_path(model, inner), blocks, template)


def _stored(cf: CounterfactualModel) -> dict[str, torch.Tensor]:
    """The parameters and buffers the file holds: all but the shared input embedding."""
    skip = cf.embed_path + "."
    return {k: v for k, v in cf.module.state_dict().items() if not k.startswith(skip)}


def save_counterfactual(cf: CounterfactualModel, path: str | Path) -> Path:
    """Write ``cf`` as one safetensors file (float32 tensors, layout and training in the metadata)."""
    path = Path(path)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in _stored(cf).items()}
    meta = {
        "blocks": cf.blocks,
        "layers_path": cf.layers_path,
        "embed_path": cf.embed_path,
        "template": cf.template,
        "info": dict(cf.info),
    }
    save_file(tensors, str(path), metadata={_KEY: json.dumps(meta, sort_keys=True)})
    return path


def read_counterfactual_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a file written by :func:`save_counterfactual`.

    Raises:
        InvalidEditError: no such file, or it holds no counterfactual model.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidEditError(f"serac: no trained counterfactual model at {path} (`factagent serac-train` builds it)")
    with safe_open(str(path), framework="pt") as handle:
        raw = (handle.metadata() or {}).get(_KEY)
    if raw is None:
        raise InvalidEditError(f"serac: {path} holds no counterfactual model metadata")
    meta: dict[str, Any] = json.loads(raw)
    return meta


def load_counterfactual(base: nn.Module, path: str | Path) -> CounterfactualModel:
    """The model in ``path`` built on ``base`` (the inner transformer whose embedding it shares).

    Tensors take ``base``'s device and dtype.

    Raises:
        InvalidEditError: no such file, not a counterfactual model, or its tensors do not fit ``base``.
    """
    meta = read_counterfactual_meta(path)
    cf = counterfactual_from_base(
        base, str(meta["layers_path"]), str(meta["embed_path"]), int(meta["blocks"]), str(meta["template"])
    )
    cf = dataclasses.replace(cf, info=meta.get("info", {}))
    expected = _stored(cf)
    tensors = load_file(str(path))
    if set(tensors) != set(expected) or any(tensors[k].shape != v.shape for k, v in expected.items()):
        raise InvalidEditError(f"serac: the counterfactual model at {path} does not fit this model's architecture")
    with torch.no_grad():
        for name, target in expected.items():
            target.copy_(tensors[name].to(target.dtype))
    return cf
