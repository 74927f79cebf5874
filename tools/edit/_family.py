"""Architecture families: where the layers of a model live, found from its config (never from its name).

The layouts and the ``model_type`` values that use them are data (:mod:`tools.edit._family_data`); this module
only reads them.

Editors address modules through templates with one ``{}`` for the layer index, as ROME does
(``transformer.h.{}.mlp.c_proj``). :func:`family_of` reads ``model.config`` to pick the family and the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tools.edit._family_data import FAMILIES, MODEL_TYPES
from tools.errors import InvalidEditError, LayerOutOfRangeError

__all__ = ["ModelFamily", "family_of", "get_module", "linear_weight", "set_module", "weight_delta_to_param"]


@dataclass(frozen=True)
class ModelFamily:
    """The module layout and sizes of one causal LM.

    ``mlp_out`` is the MLP's output projection (the "value" matrix ROME and MEMIT edit, whose *input* is the
    key vector); ``mlp_in`` its input projection; ``block`` a whole transformer block. ``grace_radius`` and
    ``wise_retrieve_act_ratio`` are the family's editor defaults (from
    :data:`~tools.edit._family_data.FAMILIES`).
    """

    name: str  # the layout's name in FAMILIES ("gpt2", "llama", "gptj", ...)
    model_type: str  # config.model_type
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
    grace_radius: float
    wise_retrieve_act_ratio: float

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
    """The family of ``model``, read from ``model.config`` through the tables of :mod:`tools.edit._family_data`.

    Raises:
        InvalidEditError: the architecture is not one the editors support (the message lists those that are).
    """
    config: Any = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    info = MODEL_TYPES.get(model_type) if isinstance(model_type, str) else None
    if info is None:
        known = ", ".join(sorted(MODEL_TYPES))
        raise InvalidEditError(f"unsupported architecture {model_type!r}: editors support {known}")
    layout = FAMILIES[info.family]
    hidden = int(getattr(config, layout.hidden_key))
    intermediate = getattr(config, layout.intermediate_key, None)
    return ModelFamily(
        name=layout.name,
        model_type=info.model_type,
        n_layers=int(getattr(config, layout.layers_key)),
        hidden=hidden,
        intermediate=int(intermediate or layout.intermediate_factor * hidden),
        block=layout.block,
        mlp=layout.mlp,
        mlp_in=layout.mlp_in,
        mlp_out=layout.mlp_out,
        attn_out=layout.attn_out,
        final_norm=layout.final_norm,
        embed=layout.embed,
        lm_head=layout.lm_head,
        grace_radius=layout.grace_radius,
        wise_retrieve_act_ratio=layout.wise_retrieve_act_ratio,
    )


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
