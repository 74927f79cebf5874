"""ROME (Meng et al., 2022, "Locating and Editing Factual Associations in GPT"): a rank-one MLP update.

One fact is written into the output projection ``W`` of the MLP at one layer (``family.mlp_out``):

1. key ``k*`` — the input of ``W`` at the subject's last token, averaged over short random prefixes;
2. value ``v*`` — ``W``'s output at that token plus a vector optimised so the model says ``target_new``
   (:func:`~tools.edit._keys.compute_values`, ROME's ``compute_v``);
3. ``ΔW = (v* - W k) (C⁻¹ k*)ᵀ / ((C⁻¹ k*)ᵀ k)`` with ``C = E[k kᵀ]`` over a text corpus (eq. 2 of the paper;
   as in the reference implementation ``k`` is the key of the bare prompt, so the edited layer maps it
   exactly to ``v*``, while the direction ``C⁻¹ k*`` comes from the averaged key).

The update is returned as a :class:`~tools.edit.LowRank` of rank one. ROME edits one fact at a time
(``max_batch = 1``, as in the paper); sequential edits are separate deltas, each computed on the model as it
is then, always with the key statistics of the *unedited* model. Use MEMIT for batches.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import ClassVar

import torch

from tools.edit._delta import WeightDelta, low_rank_for
from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._keys import ValueOptions, compute_values, context_templates, subject_keys
from tools.edit._protocol import BaseEditor
from tools.edit._request import EditRequest
from tools.edit._stats import second_moment
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["ROMEEditor", "ROMEHyperParams"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ROMEHyperParams:
    """ROME's settings (names follow the reference implementation where they exist)."""

    layers: tuple[int, ...]  # exactly one layer whose mlp_out is edited
    v_num_grad_steps: int = 25  # Adam steps of the value optimisation
    v_lr: float = 0.5  # Adam learning rate of the value delta
    v_weight_decay: float = 0.5  # weight of ||delta|| / ||v_init||^2
    clamp_norm_factor: float = 4.0  # ||delta|| <= factor * ||v_init||
    kl_factor: float = 0.0625  # weight of the KL term on "{subject} is a"
    exact_objective: bool = True  # optimise v* through the rank-one update itself (False: delta at the subject only)
    v_early_stop_loss: float = 5e-2  # stop once the target's mean NLL per token is below this
    n_context_templates: int = 10  # random prefixes besides the bare prompt (keys and values average over them)
    context_template_length: int = 8  # tokens sampled per prefix
    template_seed: int = 0  # seed of the prefix sampler
    question_template: bool = False  # also the prompt wrapped in the model's question format ("Q: {}\nA:")
    mom2_adjustment: bool = True  # weigh the key by C^-1 (False: plain k*, as ROME's ablation)
    mom2_n_texts: int = 100_000  # at most this many corpus texts for C
    mom2_ridge: float = 1e-3  # C + ridge * mean(diag C) * I before solving (keeps C^-1 stable on small corpora)

    @classmethod
    def for_family(cls, family: ModelFamily) -> ROMEHyperParams:
        """Defaults per family: an early-middle layer (ROME edits layer 17 of GPT-2 XL's 48 = ~1/3 depth)."""
        layer = max(0, min(family.n_layers - 1, family.n_layers // 4))
        if family.name == "llama":
            return cls(layers=(layer,))
        return cls(layers=(layer,))

    def value_options(self) -> ValueOptions:
        """The value-optimisation part of these settings."""
        return ValueOptions(
            steps=self.v_num_grad_steps,
            lr=self.v_lr,
            weight_decay=self.v_weight_decay,
            clamp_norm_factor=self.clamp_norm_factor,
            kl_factor=self.kl_factor,
            early_stop_loss=self.v_early_stop_loss,
        )


class ROMEEditor(BaseEditor[ROMEHyperParams]):
    """Rank-one model editing of one fact (see the module docstring).

    Needs a statistics corpus (``corpus=``, or ``corpus_name=`` of statistics cached in ``cache_dir``)
    when ``mom2_adjustment`` is on.
    """

    name: ClassVar[str] = "rome"
    hparams_class: ClassVar[type] = ROMEHyperParams
    max_batch: ClassVar[int] = 1  # ROME edits one fact per update, as in the paper

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: ROMEHyperParams
    ) -> WeightDelta:
        start = time.perf_counter()
        if len(hparams.layers) != 1:
            raise InvalidEditError(f"rome edits exactly one layer, got layers={hparams.layers}")
        family = family_of(model.model)
        layer = hparams.layers[0]
        path = family.path(family.mlp_out, layer)
        module = get_module(model.model, path)
        req = requests[0]

        templates = context_templates(
            model, hparams.n_context_templates, hparams.context_template_length, hparams.template_seed
        )
        fmt = getattr(model, "prompt_format", None)
        if hparams.question_template and fmt is not None:
            templates = (*templates, fmt.question("{}"))
        k_star = subject_keys(model, path, [req], templates)[0].mean(dim=0).double()  # (in,)
        stats_source = "none"
        if hparams.mom2_adjustment:
            stats = second_moment(
                model,
                layer,
                corpus=self.corpus,
                corpus_name=self.corpus_name,
                cache_dir=self.cache_dir,
                max_texts=hparams.mom2_n_texts,
            )
            cov = stats.matrix.double()  # (in, in)
            ridge = hparams.mom2_ridge * cov.diagonal().mean()
            u = torch.linalg.solve(cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device), k_star)
            stats_source = stats.source
        else:
            u = k_star
        k_bare = subject_keys(model, path, [req], ("{}",))[0, 0].double()  # (in,)
        denom = torch.dot(u, k_bare)
        if not bool(torch.isfinite(denom)) or float(denom.abs()) < 1e-12 * float(u.norm() * k_bare.norm()):
            raise InvalidEditError(f"rome: the key of {req.subject!r} is orthogonal to its update direction")
        direction = (u / denom).unsqueeze(0)  # (1, in): gives 1 on the bare prompt's key
        values = compute_values(
            model,
            path,
            [req],
            templates,
            hparams.value_options(),
            direction=direction.float() if hparams.exact_objective else None,
        )
        left = (values.target - values.init)[0].double().unsqueeze(1)  # (out, 1): v* - W k
        right = direction  # (1, in)
        weight = getattr(module, "weight")
        update = low_rank_for(module, left.to(weight.dtype), right.to(weight.dtype))
        seconds = time.perf_counter() - start
        logger.info("rome: %r -> %r at layer %d in %.2fs", req.prompt, req.target_new, layer, seconds)
        return WeightDelta(
            method=self.name,
            requests=requests,
            updates={f"{path}.weight": update},
            info={
                "layer": layer,
                "nll": values.nll[0],
                "delta_norm": float(left.norm()),
                "update_norm": float(left.norm() * right.norm()),
                "stats": stats_source,
                "seconds": seconds,
            },
        )
