"""Constrained fine-tuning editors: FT-L and FT-M.

Both fine-tune the weight of the MLP output projection (``family.mlp_out``) of a few layers on the edit prompts
followed by their new targets, and keep every weight inside an L-infinity ball of radius ``norm_constraint``
around its original value by clamping after each optimiser step (Zhu et al. 2020, "Modifying Memories in
Transformer Models", the constrained fine-tuning baseline). They differ in the loss:

* **FT-L** — the language-model loss of ``prompt + target``: the cross-entropy of every next token of the
  sequence, prompt tokens included, averaged per request (fine-tuning on the new fact's sentence, as Zhu et al.
  do with their supporting evidence).
* **FT-M** — EasyEdit's masked variant ("target_new" objective; FT-M in the KnowEdit survey, Zhang et al.
  2024): the cross-entropy over the *target* positions only, the prompt masked out, averaged per request.

EasyEdit's own FT-L (its "prompt_last" objective, taken from ROME's baseline) scores every target token at the
last prompt position, which trains a bag of tokens rather than the target sequence; we use the sequence loss
instead so that a multi-token target becomes the greedy continuation.

Defaults (:meth:`FTHyperParams.for_family`): the last layer, at most 40 Adam steps at lr 1e-3, radius 0.03,
stopping once every target token's mean NLL is below 0.05. On 50 single world edits (every 12th, each applied
alone and rolled back; generalization counts paraphrases the unedited model answered with the old object):

* gpt2-world: FT-L reliability 1.00, generalization 0.47, locality 0.92; FT-M 1.00 / 0.46 / 0.92;
* llama-world: FT-L 1.00 / 0.48 / 0.96; FT-M 1.00 / 0.49 / 0.96.

The middle layer (``layers=(2,)``) is as reliable but leaks more: gpt2 gen 0.20-0.23 / loc 0.83-0.84, llama
gen 0.28-0.30 / loc 0.93-0.94.

Nothing touches the model: the trainable weights are float32 copies substituted into the forward pass with
:func:`torch.func.functional_call`; the returned :class:`~tools.edit.WeightDelta` holds dense updates laid out
like the parameters (GPT-2's ``Conv1D`` ``(in, out)``, LLaMA's ``Linear`` ``(out, in)``). A batch of requests
is fitted jointly. Deltas fitted after another edit was applied assume that edit is present: rolling an earlier
edit back leaves the later deltas as they were (see :mod:`tools.edit._journal`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.func import functional_call

from tools.edit._delta import WeightDelta, check_finite
from tools.edit._family import ModelFamily, family_of
from tools.edit._protocol import BaseEditor, model_device_dtype
from tools.edit._request import EditRequest, EncodedRequest, encode_requests
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["FTHyperParams", "FTLEditor", "FTMEditor"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FTHyperParams:
    """Hyperparameters of FT-L and FT-M (defaults from :meth:`for_family`)."""

    layers: tuple[int, ...]  # layers whose MLP output projection is fine-tuned
    steps: int = 40  # at most this many full-batch Adam steps
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay (pulls the trained copy towards zero, not the original)
    norm_constraint: float = 3e-2  # L-inf radius around the original weights, enforced after every step
    early_stop_loss: float = 5e-2  # stop once every request's mean target-token NLL is below this (nats)

    def __post_init__(self) -> None:
        if not self.layers:
            raise InvalidEditError("ft: layers must name at least one layer")
        if self.steps < 1:
            raise InvalidEditError(f"ft: steps must be >= 1, got {self.steps}")
        for name in ("lr", "norm_constraint"):
            value = getattr(self, name)
            if not value > 0:
                raise InvalidEditError(f"ft: {name} must be > 0, got {value}")
        if self.weight_decay < 0 or self.early_stop_loss < 0:
            raise InvalidEditError("ft: weight_decay and early_stop_loss must be >= 0")

    @classmethod
    def for_family(cls, family: ModelFamily) -> FTHyperParams:
        """The last layer; the other defaults were tuned on the reference models (module docstring)."""
        return cls(layers=(family.n_layers - 1,))


def _target_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the labelled positions of each row: ``(B,)`` from logits ``(B, T, V)`` and labels ``(B, T)``."""
    token_nll = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), labels, ignore_index=-100, reduction="none"
    )  # (B, T)
    mask = (labels != -100).to(token_nll.dtype)
    return (token_nll * mask).sum(1) / mask.sum(1).clamp_min(1.0)


def _sequence_labels(enc: EncodedRequest) -> torch.Tensor:
    """Next-token labels of every real position of ``prompt + target``: ``(B, T)``, ``-100`` past the end."""
    labels = torch.full_like(enc.input_ids, -100)
    labels[:, :-1] = enc.input_ids[:, 1:]
    valid_next = enc.attention_mask[:, 1:].bool()  # position t predicts t + 1, which must be a real token
    labels[:, :-1] = labels[:, :-1].masked_fill(~valid_next, -100)
    return labels


class _FTEditor(BaseEditor[FTHyperParams]):
    """Shared loop of FT-L and FT-M; subclasses pick the training labels."""

    hparams_class: ClassVar[type] = FTHyperParams

    def _train_labels(self, enc: EncodedRequest) -> torch.Tensor:
        raise NotImplementedError

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: FTHyperParams
    ) -> WeightDelta:
        torch_model = model.model
        family = family_of(torch_model)
        device, dtype = model_device_dtype(torch_model)
        enc = encode_requests(model.tokenizer, requests, device)
        train_labels = self._train_labels(enc)

        names = [family.path(family.mlp_out, layer) + ".weight" for layer in hparams.layers]
        params = dict(torch_model.named_parameters())
        for name in names:
            if name not in params:  # pragma: no cover - family templates name real modules
                raise InvalidEditError(f"{self.name}: the model has no parameter {name!r}")
        originals = {n: params[n].detach().float() for n in names}  # float32 copies (the model's dtype may be lower)
        trained = {n: w.clone().requires_grad_(True) for n, w in originals.items()}
        opt = torch.optim.Adam(list(trained.values()), lr=hparams.lr, weight_decay=hparams.weight_decay)
        eps = hparams.norm_constraint

        def forward() -> torch.Tensor:
            replaced = {n: w.to(dtype) for n, w in trained.items()}
            kwargs = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}
            out: Any = functional_call(torch_model, replaced, args=(), kwargs=kwargs, strict=False)
            return out.logits.float()  # (B, T, V)

        losses: list[float] = []
        target_nll = torch.full((len(requests),), float("inf"))
        steps = 0
        with torch.enable_grad():
            for _ in range(hparams.steps):
                logits = forward()
                target_nll = _target_nll(logits.detach(), enc.labels).cpu()
                if bool((target_nll < hparams.early_stop_loss).all()):
                    break
                loss = _target_nll(logits, train_labels).mean()
                losses.append(float(loss.detach()))
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps += 1
                with torch.no_grad():
                    for n, w in trained.items():
                        w.copy_(torch.clamp(w, originals[n] - eps, originals[n] + eps))
            else:
                with torch.no_grad():
                    target_nll = _target_nll(forward(), enc.labels).cpu()

        updates: dict[str, torch.Tensor] = {}
        for n, w in trained.items():
            delta = (w.detach() - originals[n]).to(params[n].dtype)  # laid out like the parameter
            check_finite(n, delta)
            updates[n] = delta
        max_abs = max(float(u.abs().max()) for u in updates.values())
        logger.debug("%s: %d step(s), final target NLL %s", self.name, steps, target_nll.tolist())
        return WeightDelta(
            method=self.name,
            requests=requests,
            updates=updates,
            info={
                "steps": steps,
                "losses": losses,
                "target_nll": target_nll.tolist(),
                "max_abs_update": max_abs,
                "layers": list(hparams.layers),
            },
        )


class FTLEditor(_FTEditor):
    """FT-L: constrained fine-tuning on the whole ``prompt + target`` sequence (Zhu et al. 2020).

    Example:
        >>> from tools.edit import get_editor
        >>> ft = get_editor("ft-l", norm_constraint=1e-2)
        >>> delta = ft.compute(lm, [EditRequest("Alibaba's CEO is", "Alibaba", "Jane Roe")])  # doctest: +SKIP
    """

    name: ClassVar[str] = "ft-l"

    def _train_labels(self, enc: EncodedRequest) -> torch.Tensor:
        return _sequence_labels(enc)


class FTMEditor(_FTEditor):
    """FT-M: constrained fine-tuning with the loss on the target tokens only (EasyEdit's masked variant)."""

    name: ClassVar[str] = "ft-m"

    def _train_labels(self, enc: EncodedRequest) -> torch.Tensor:
        return enc.labels
