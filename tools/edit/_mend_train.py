"""Training MEND's editor network on edits that are not evaluated (Mitchell et al., 2022, §3.2 and Alg. 1).

Each step draws ``batch`` training edits, takes their joint gradient on the *unedited* model
(:func:`~tools.edit._mend.gradient_factors`), turns it into ``ΔW`` with the network, and scores the model with
``W + ΔW`` substituted (:func:`torch.func.functional_call`; the model's parameters are never written):

    L = edit_weight · (NLL(target | prompt) + NLL(target | paraphrase)) + locality_weight · KL(base ‖ edited)

the NLLs over the target tokens (mean per request), the KL over every next-token distribution of the edits'
neighbourhood prompts followed by their true answers. Only the network's parameters get gradients (MEND's
editing and locality losses; its paraphrase draw gives the generalisation term).

The normalisation statistics (``μ``, ``σ``) are measured once, before training, on the gradients of the first
``stats_edits`` training edits. Deterministic for a seed on CPU.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.func import functional_call

from tools.edit._family import get_module
from tools.edit._ft import _target_nll
from tools.edit._mend import gradient_factors, mend_params
from tools.edit._mend_net import MendNetwork
from tools.edit._protocol import frozen_model
from tools.edit._request import EditRequest, encode_requests
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["MendExample", "MendTrainConfig", "train_mend"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MendExample:
    """A training edit with its paraphrase prompts and its neighbourhood ``(prompt, true answer)`` pairs.

    Raises:
        InvalidEditError: a paraphrase does not mention the request's subject.
    """

    request: EditRequest
    paraphrases: tuple[str, ...] = ()  # other phrasings of the edited fact, each mentioning the subject
    neighbours: tuple[tuple[str, str], ...] = ()  # prompts about other subjects with their true answers

    def __post_init__(self) -> None:
        for text in self.paraphrases:
            if self.request.subject not in text:
                raise InvalidEditError(f"mend-train: paraphrase {text!r} does not mention {self.request.subject!r}")


@dataclass(frozen=True)
class MendTrainConfig:
    """Settings of :func:`train_mend`."""

    layers: tuple[int, ...]  # layers whose MLP output projection the network edits
    rank: int = 32  # hidden width of each gradient transform
    steps: int = 500  # optimiser steps
    batch: int = 4  # edits per step, edited jointly
    lr: float = 1e-3  # Adam learning rate of the network
    edit_weight: float = 1.0  # weight of the edit and paraphrase NLLs
    locality_weight: float = 1.0  # weight of the neighbourhood KL
    stats_edits: int = 64  # training edits whose gradients give the normalisation statistics
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.layers:
            raise InvalidEditError("mend-train: layers must name at least one layer")
        if min(self.rank, self.steps, self.batch, self.stats_edits) < 1:
            raise InvalidEditError("mend-train: rank, steps, batch and stats_edits must be >= 1")
        if not self.lr > 0 or self.edit_weight < 0 or self.locality_weight < 0:
            raise InvalidEditError("mend-train: lr must be > 0, the loss weights >= 0")


def _edited_logits(
    model: LocalLanguageModel, network: MendNetwork, factors: dict[str, Any], enc: Any, conv: dict[str, bool]
) -> torch.Tensor:
    """Logits ``(B, T, V)`` of the model with every ``W + ΔW`` substituted (differentiable in the network)."""
    params = dict(model.model.named_parameters())
    replaced = {}
    for name, (keys, grads) in factors.items():
        left, right = network.transform(name)(keys, grads)
        update = left @ right  # (out, in)
        replaced[name] = params[name] + (update.T if conv[name] else update).to(params[name].dtype)
    kwargs = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}
    out: Any = functional_call(model.model, replaced, args=(), kwargs=kwargs, strict=False)
    return out.logits.float()


def _kl(base: torch.Tensor, edited: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real positions of KL(base ‖ edited) of next-token distributions ``(B, T, V)``."""
    base_lp, edit_lp = base.log_softmax(-1), edited.log_softmax(-1)
    kl = (base_lp.exp() * (base_lp - edit_lp)).sum(-1)  # (B, T)
    m = mask.to(kl.dtype)
    return (kl * m).sum() / m.sum().clamp_min(1.0)


def train_mend(
    model: LocalLanguageModel,
    examples: Sequence[MendExample],
    config: MendTrainConfig,
    *,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> MendNetwork:
    """Train an editor network for ``model`` on ``examples`` (module docstring); the model is left untouched.

    Returns the network in eval mode, its ``info`` recording the settings, the number of examples and the
    training time. ``on_step(step, losses)`` is called after each step (progress bars).

    Raises:
        InvalidEditError: fewer examples than one batch.
    """
    if len(examples) < config.batch:
        raise InvalidEditError(f"mend-train: {len(examples)} examples, fewer than one batch of {config.batch}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    torch_model = model.model
    device = next(torch_model.parameters()).device
    params, shapes = mend_params(torch_model, config.layers)
    network = MendNetwork(params, shapes, config.rank).to(device)
    conv = {p: type(get_module(torch_model, p.removesuffix(".weight"))).__name__ == "Conv1D" for p in params}
    start = time.perf_counter()
    with frozen_model(torch_model):
        stats = gradient_factors(model, [e.request for e in examples[: config.stats_edits]], params)
        for name, (keys, grads) in stats.items():
            network.transform(name).set_statistics(keys, grads)
        network.train()
        opt = torch.optim.Adam(network.parameters(), lr=config.lr)
        for step in range(config.steps):
            batch = rng.sample(list(examples), config.batch)
            losses = _step(model, network, batch, config, conv, rng, device)
            opt.zero_grad()
            losses["total"].backward()
            opt.step()
            if on_step is not None:
                on_step(step, {k: float(v.detach()) for k, v in losses.items()})
    network.eval()
    network.info = {
        "examples": len(examples),
        "steps": config.steps,
        "batch": config.batch,
        "lr": config.lr,
        "rank": config.rank,
        "locality_weight": config.locality_weight,
        "seed": config.seed,
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return network


def _step(
    model: LocalLanguageModel,
    network: MendNetwork,
    batch: Sequence[MendExample],
    config: MendTrainConfig,
    conv: dict[str, bool],
    rng: random.Random,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    requests = [e.request for e in batch]
    factors = gradient_factors(model, requests, network.params)
    para = [
        EditRequest(rng.choice(e.paraphrases), e.request.subject, e.request.target_new, e.request.target_old)
        if e.paraphrases
        else e.request
        for e in batch
    ]
    enc = encode_requests(model.tokenizer, requests + para, device)
    with torch.enable_grad():
        nll = _target_nll(_edited_logits(model, network, factors, enc, conv), enc.labels)  # (2B,)
        edit_loss = nll[: len(batch)].mean()
        para_loss = nll[len(batch) :].mean()
        total = config.edit_weight * (edit_loss + para_loss)
        hood = [rng.choice(e.neighbours) for e in batch if e.neighbours]
        kl = torch.zeros((), device=device)
        if hood:
            near = [EditRequest(p, p.split()[0], a) for p, a in hood]
            hood_enc = encode_requests(model.tokenizer, near, device)
            with torch.no_grad():
                base = model.model(input_ids=hood_enc.input_ids, attention_mask=hood_enc.attention_mask).logits.float()
            edited = _edited_logits(model, network, factors, hood_enc, conv)
            kl = _kl(base, edited, hood_enc.attention_mask)
            total = total + config.locality_weight * kl
    return {"total": total, "edit": edit_loss.detach(), "paraphrase": para_loss.detach(), "kl": kl.detach()}
