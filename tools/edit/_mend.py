"""MEND (Mitchell et al., 2022, "Fast Model Editing at Scale"; KnowEdit's "editing intrinsic knowledge").

An edit is one gradient of the target tokens' cross-entropy (FT-M's masked loss) on ``prompt + target_new``,
taken with respect to the MLP output projections of ``layers``, decomposed into its per-token rank-one factors
``(u_t, δ_t)`` (:func:`gradient_factors`) and turned into the weight update by the trained editor network
(:mod:`tools.edit._mend_net`): ``ΔW = -η Σ_t δ̃_t ũ_tᵀ``. Nothing is optimised at edit time.

One deviation from the paper (which applies the network once): ``max_steps`` (default 2) applications, each on
the gradient of the model with the update so far substituted, stopping once every request's target NLL is
below ``early_stop_loss``; ``max_steps=1`` is the paper's MEND. With one application three sequential edits did
not all take effect (the contract suite, both models); with two they do. ``edit-bench --method mend --T
1,10,100`` (sequential, scored after all T; reliability / generalization / locality, greedy, teacher-forced in
brackets), ``max_steps`` 1 / 2 / 3:

* GPT-2 T=1: 1.00 / n.a. / 0.80 (1.00 / n.a. / 0.96) for all three; T=10: 0.60 / 0.52 / 0.24, 0.60 / 0.43 /
  0.10, 0.40 / 0.14 / 0.00; T=100: 0.02 / 0.015 / 0.00, 0.00 / 0.00 / 0.00, 0.00 / 0.00 / 0.00.
* LLaMA T=1: 1.00 / 1.00 / 0.60 (1.00 / 1.00 / 0.87) for all three; T=10: 0.80 / 0.55 / 0.38, 0.70 / 0.63 /
  0.30, 0.70 / 0.63 / 0.26; T=100: 0.08 / 0.02 / 0.00, 0.05 / 0.02 / 0.00, 0.04 / 0.005 / 0.00.

Sequential MEND collapses by T=100 on both models: the network was trained to edit the unedited model, one
batch at a time (as in the paper), and each update (norm comparable to the weight's response) moves every
input of the last two layers; more steps per edit make each edit hold but enlarge the update, so locality falls
faster. 0.2-0.5 s per edit on 2 shared cores.

Why T=100 reaches 0.00 (GPT-2, the default two steps, logged ``info["relative_norm"]``): the first edits'
updates are large, median 0.16 (layer 2) and 0.09 (layer 3) of the weight's Frobenius norm over the first 10
edits, so after about ten edits the last two MLPs answer nothing right, and later edits no longer take
(their target NLL stays 7-10 nats after both steps, against under 0.01 for the first ones). ``max_relative_norm``
caps each edit's update at a share of the weight's norm (same direction; applied at every step, so the second
step fits the edit under the cap). ``edit-bench``'s T=100 cases, GPT-2, greedy (teacher-forced):

* no cap: 0.00 / 0.00 / 0.00 (0.03 / 0.015 / 0.045); one step (``max_steps=1``): 0.02 / 0.015 / 0.00;
* cap 0.05: 0.03 / 0.02 / 0.00 (0.19 / 0.18 / 0.15) (cap applied after the last step);
* cap 0.02: 0.16 / 0.055 / 0.50 (0.53 / 0.40 / 0.77) applied after the last step; at every step 0.11 / 0.045 /
  0.495 (0.42 / 0.34 / 0.77), and 0.15 / 0.06 / 0.50 (0.52 / 0.395 / 0.77) with ``max_steps=3``; but at
  every step T=1 reliability is 0.00 (0.75) and T=10 0.00 / 0.00 / 0.94 (0.44 / 0.28 / 0.96);
* LLaMA, cap 0.02 at every step: T=1 0.00 / 0.00 / 1.00 (0.50 / 0.625 / 1.00), T=10 0.00 / 0.00 / 0.98,
  T=100 0.13 / 0.03 / 0.23 (0.49 / 0.375 / 0.66);
* cap 0.01 (at every step): T=100 0.04 / 0.02 / 0.87 (0.41 / 0.37 / 0.92), but a single edit no longer takes:
  T=1 reliability 0.00 (0.75), T=10 0.10 / 0.00 / 0.98.

The cap trades each edit's strength for the model's: locality recovers, but under a cap of 0.02 the T=1 edit (one
case) and the ten of T=10 no longer change the greedy answer (uncapped, the first edits' updates are 0.16 / 0.09
of the weight's norm), and a hundred updates that large in the same two matrices wreck them, so no cap gives both
(reliability stays far below ROME's 0.98). Not tried: a network trained on sequential edit streams (the paper and
this one train on single batches to the unedited model).

The network is trained offline (:mod:`tools.edit._mend_train`, ``factagent mend-train``) on the world's
lifelong edits (``edits_lifelong.jsonl``, ids ``e0600`` on), never on ``edits.jsonl``, the pool that
``edit-bench`` draws its test edits from. It ships next to the model as ``mend.safetensors``
(:data:`~tools.edit._mend_net.MEND_FILE`); ``weights=`` points elsewhere.

The delta is one :class:`~tools.edit.LowRank` per layer (rank = the number of target tokens), applied and
rolled back exactly through the journal. Sequential edits each take the gradient on the model as it is
(earlier edits included), as MEND's sequential-editing experiments do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import functional_call

from tools.edit._delta import LowRank, WeightDelta, check_finite, low_rank_for
from tools.edit._family import ModelFamily, family_of, get_module, linear_weight
from tools.edit._ft import _target_nll
from tools.edit._mend_net import MEND_FILE, MendNetwork, load_mend
from tools.edit._protocol import BaseEditor
from tools.edit._request import EditRequest, encode_requests
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["MENDEditor", "MENDHyperParams", "gradient_factors", "mend_params"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MENDHyperParams:
    """Settings of the MEND editor."""

    layers: tuple[int, ...]  # layers whose MLP output projection is edited (must match the trained network)
    weights: str = ""  # the trained network's file; "" = mend.safetensors in the model's directory
    lr_scale: float = 1.0  # multiplies the learned step η at edit time (1 = as trained)
    max_steps: int = 2  # network applications per edit, each on the gradient of the model edited so far
    early_stop_loss: float = 5e-2  # no further step once every request's mean target NLL is below this (nats)
    max_relative_norm: float = 0.0  # clip each edit's update to this share of the weight's Frobenius norm (0: off)

    def __post_init__(self) -> None:
        if not self.layers:
            raise InvalidEditError("mend: layers must name at least one layer")
        if not self.lr_scale > 0:
            raise InvalidEditError(f"mend: lr_scale must be > 0, got {self.lr_scale}")
        if self.max_steps < 1 or self.early_stop_loss < 0:
            raise InvalidEditError("mend: max_steps must be >= 1 and early_stop_loss >= 0")
        if not self.max_relative_norm >= 0:
            raise InvalidEditError(f"mend: max_relative_norm must be >= 0, got {self.max_relative_norm}")

    @classmethod
    def for_family(cls, family: ModelFamily) -> MENDHyperParams:
        """The last two layers (MEND edits the last layers' MLPs; the reference models have four)."""
        return cls(layers=(family.n_layers - 2, family.n_layers - 1))


def mend_params(model: nn.Module, layers: Sequence[int]) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Parameter names and ``(out, in)`` shapes of the MLP output projections of ``layers``."""
    family = family_of(model)
    paths = [family.path(family.mlp_out, layer) for layer in layers]
    shapes = tuple(tuple(linear_weight(get_module(model, p)).shape) for p in paths)
    return tuple(f"{p}.weight" for p in paths), shapes  # type: ignore[return-value]


def gradient_factors(
    model: LocalLanguageModel,
    requests: Sequence[EditRequest],
    params: Sequence[str],
    replaced: dict[str, torch.Tensor] | None = None,
    nll_out: list[float] | None = None,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-token factors of the target NLL's gradient for each parameter: ``keys`` ``(N, in)``, ``grads`` ``(N, out)``.

    ``∇W = gradsᵀ @ keys`` (``(out, in)``) is the gradient of the summed per-request mean target NLL; ``N``
    counts the real (unpadded) tokens of the batch. The model's parameters are not touched: the gradient is
    taken with respect to detached copies of the layers' outputs (hooks removed on return). ``replaced``
    substitutes parameter values for the pass (an edit in progress); ``nll_out`` receives each request's NLL.
    """
    torch_model = model.model
    device = next(torch_model.parameters()).device
    enc = encode_requests(model.tokenizer, requests, device)
    paths = [p.removesuffix(".weight") for p in params]
    keys: dict[str, torch.Tensor] = {}
    outs: dict[str, torch.Tensor] = {}

    def hook_for(path: str) -> Any:
        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            keys[path] = inputs[0].detach()
            leaf = output.detach().requires_grad_(True)
            outs[path] = leaf
            return leaf.clone()  # not the leaf itself: some blocks add to the MLP output in place (Falcon)

        return hook

    handles = [get_module(torch_model, p).register_forward_hook(hook_for(p)) for p in paths]
    try:
        with torch.enable_grad():
            kwargs = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}
            result: Any = functional_call(torch_model, replaced or {}, args=(), kwargs=kwargs, strict=False)
            nll = _target_nll(result.logits.float(), enc.labels)
            nll.sum().backward()
            if nll_out is not None:
                nll_out.extend(nll.detach().cpu().tolist())
    finally:
        for handle in handles:
            handle.remove()
    real = enc.attention_mask.reshape(-1).bool()
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, path in zip(params, paths, strict=True):
        grad = outs[path].grad
        assert grad is not None  # the loss depends on every edited layer
        k = keys[path].reshape(-1, keys[path].shape[-1])[real].float()
        g = grad.reshape(-1, grad.shape[-1])[real].float()
        out[name] = (k, g)
    return out


class MENDEditor(BaseEditor[MENDHyperParams]):
    """MEND: a trained network turns the edit's gradient into the update (module docstring).

    Example:
        >>> from tools.edit import get_editor
        >>> mend = get_editor("mend")
        >>> delta = mend.compute(lm, [EditRequest("Alibaba's CEO is", "Alibaba", "Jane Roe")])  # doctest: +SKIP
    """

    name: ClassVar[str] = "mend"
    hparams_class: ClassVar[type] = MENDHyperParams
    _networks: ClassVar[dict[tuple[str, float], MendNetwork]] = {}  # path, mtime -> loaded network

    def network_for(self, model: LocalLanguageModel, hparams: MENDHyperParams) -> MendNetwork:
        """The trained network for ``model`` (cached per file); checks it edits the requested layers."""
        path = Path(hparams.weights) if hparams.weights else model_dir(model) / MEND_FILE
        if not path.is_file():
            raise InvalidEditError(f"mend: no trained editor network at {path} (build it with `factagent mend-train`)")
        key = (str(path.resolve()), path.stat().st_mtime)
        network = self._networks.get(key)
        if network is None:
            network = self._networks[key] = load_mend(path)
        params, shapes = mend_params(model.model, hparams.layers)
        if network.params != params or network.shapes != shapes:
            raise InvalidEditError(
                f"mend: the network at {path} edits {list(network.params)}, not {list(params)} of this model"
            )
        return network

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: MENDHyperParams
    ) -> WeightDelta:
        network = self.network_for(model, hparams)
        torch_model = model.model
        params = dict(torch_model.named_parameters())
        dtype = params[network.params[0]].dtype
        lefts: dict[str, list[torch.Tensor]] = {p: [] for p in network.params}
        rights: dict[str, list[torch.Tensor]] = {p: [] for p in network.params}
        replaced: dict[str, torch.Tensor] = {}
        nlls: list[list[float]] = []
        relative: dict[str, float] = {}  # the largest update / weight norm before the cap, over the steps
        for _ in range(hparams.max_steps):
            nll: list[float] = []
            factors = gradient_factors(model, requests, network.params, replaced, nll)
            nlls.append(nll)
            if max(nll) < hparams.early_stop_loss:
                break
            with torch.no_grad():
                for name, (keys, grads) in factors.items():
                    left, right = network.transform(name).to(keys.device)(keys, grads)  # (out, N), (N, in)
                    lefts[name].append(hparams.lr_scale * left)
                    rights[name].append(right)
                    conv = type(get_module(torch_model, name.removesuffix(".weight"))).__name__ == "Conv1D"
                    total = torch.cat(lefts[name], 1) @ torch.cat(rights[name], 0)  # (out, in)
                    share = float(total.norm()) / float(params[name].detach().float().norm())
                    relative[name] = max(relative.get(name, 0.0), share)
                    if hparams.max_relative_norm and share > hparams.max_relative_norm:
                        # capped before the next step reads it, so that step fits the edit under the cap
                        factor = hparams.max_relative_norm / share
                        lefts[name] = [factor * x for x in lefts[name]]
                        total = factor * total
                    replaced[name] = params[name] + (total.T if conv else total).to(dtype)
        if not replaced:  # the model already says the targets: a zero update
            for name, (out_dim, in_dim) in zip(network.params, network.shapes, strict=True):
                lefts[name].append(torch.zeros(out_dim, 1))
                rights[name].append(torch.zeros(1, in_dim))
        updates: dict[str, LowRank] = {}
        for name in network.params:
            left = torch.cat(lefts[name], 1).to(dtype)
            right = torch.cat(rights[name], 0).to(dtype)
            check_finite(name, left)
            check_finite(name, right)
            updates[name] = low_rank_for(get_module(torch_model, name.removesuffix(".weight")), left, right)
        logger.debug("mend: target NLL per step %s, update / weight norm %s", nlls, relative)
        return WeightDelta(
            method=self.name,
            requests=requests,
            updates=updates,
            info={"steps": len(lefts[network.params[0]]), "nll": nlls, "relative_norm": relative},
        )


def model_dir(model: LocalLanguageModel) -> Path:
    """The directory the model was loaded from (``config.name_or_path``)."""
    name = getattr(getattr(model.model, "config", None), "name_or_path", "") or ""
    if not name:
        raise InvalidEditError("mend: the model does not know its directory; pass weights= explicitly")
    return Path(name)
