"""Architecture families: where the layers of a model live, found from its config (never from its name).

Editors address modules through templates with one ``{}`` for the layer index, as ROME does
(``transformer.h.{}.mlp.c_proj``). :func:`family_of` reads ``model.config`` to pick the family and the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from tools.errors import InvalidEditError, LayerOutOfRangeError

__all__ = ["ModelFamily", "family_of", "get_module", "linear_weight", "set_module", "weight_delta_to_param"]

FamilyName = Literal["gpt2", "llama"]

# model_type values (from config.json) that share a layout
_GPT2_TYPES = frozenset({"gpt2"})
_LLAMA_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "olmo"})


@dataclass(frozen=True)
class ModelFamily:
    """The module layout and sizes of one causal LM.

    ``mlp_out`` is the MLP's output projection (the "value" matrix ROME and MEMIT edit, whose *input* is the
    key vector); ``mlp_in`` its input projection; ``block`` a whole transformer block.
    """

    name: FamilyName
    n_layers: int
    hidden: int  # residual width d
    intermediate: int  # MLP width (the key dimension of mlp_out)
    block: str
    mlp: str
    mlp_in: str
    mlp_out: str
    attn_out: str
    final_norm: str
    embed: str
    lm_head: str

    def path(self, template: str, layer: int) -> str:
        """``template`` filled with ``layer``; raises :class:`LayerOutOfRangeError` outside ``[0, n_layers)``."""
        check_layers(self, [layer])
        return template.format(layer)


def check_layers(family: ModelFamily, layers: Any) -> None:
    """Raise :class:`LayerOutOfRangeError` unless every index is a layer of the model."""
    for layer in layers:
        if not isinstance(layer, int) or not 0 <= layer < family.n_layers:
            last = family.n_layers - 1
            raise LayerOutOfRangeError(f"layer {layer!r} is out of range: the model has layers 0..{last}")


def family_of(model: nn.Module) -> ModelFamily:
    """The family of ``model``, read from ``model.config``.

    Raises:
        InvalidEditError: the architecture is not one the editors support.
    """
    config: Any = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type in _GPT2_TYPES:
        hidden = int(config.n_embd)
        return ModelFamily(
            name="gpt2",
            n_layers=int(config.n_layer),
            hidden=hidden,
            intermediate=int(config.n_inner or 4 * hidden),
            block="transformer.h.{}",
            mlp="transformer.h.{}.mlp",
            mlp_in="transformer.h.{}.mlp.c_fc",
            mlp_out="transformer.h.{}.mlp.c_proj",
            attn_out="transformer.h.{}.attn.c_proj",
            final_norm="transformer.ln_f",
            embed="transformer.wte",
            lm_head="lm_head",
        )
    if model_type in _LLAMA_TYPES:
        return ModelFamily(
            name="llama",
            n_layers=int(config.num_hidden_layers),
            hidden=int(config.hidden_size),
            intermediate=int(config.intermediate_size),
            block="model.layers.{}",
            mlp="model.layers.{}.mlp",
            mlp_in="model.layers.{}.mlp.up_proj",
            mlp_out="model.layers.{}.mlp.down_proj",
            attn_out="model.layers.{}.self_attn.o_proj",
            final_norm="model.norm",
            embed="model.embed_tokens",
            lm_head="lm_head",
        )
    raise InvalidEditError(f"unsupported architecture {model_type!r}: editors know GPT-2 and LLaMA families")


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at dotted ``path``; raises :class:`InvalidEditError` if there is none."""
    try:
        return model.get_submodule(path)
    except AttributeError as exc:
        raise InvalidEditError(f"the model has no module {path!r}") from exc


def set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``path`` (used to install and remove adapters)."""
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, module)


def linear_weight(module: nn.Module) -> torch.Tensor:
    """The weight of a linear map as ``(out, in)``, whatever the module type (GPT-2's Conv1D stores ``(in, out)``)."""
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight.T if type(module).__name__ == "Conv1D" else weight


def weight_delta_to_param(module: nn.Module, delta_out_in: torch.Tensor) -> torch.Tensor:
    """An ``(out, in)`` update laid out like ``module.weight`` (transposed for Conv1D)."""
    return delta_out_in.T.contiguous() if type(module).__name__ == "Conv1D" else delta_out_in
