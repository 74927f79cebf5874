"""Training SERAC's counterfactual model on edits that are not evaluated (Mitchell et al., 2022, §3).

The model (:mod:`tools.edit._serac_cf`) starts as the base model's first ``blocks`` blocks and is fine-tuned,
base model frozen (its input embedding and output head are shared and never trained), on rows
``z_e + x + y`` with ``z_e`` the edit as the model reads it (its template):

    L = NLL(target_new | z_e, x_in) + locality_weight · KL(base(x_out) ‖ h(z_e, x_out))

* ``x_in``: the edit prompt or one of its paraphrases (in scope), ``y`` the new object: the paper's objective;
* ``x_out``: one of the edit's neighbourhood prompts (same relation, another subject) followed by its true
  answer, read after the *wrong* edit; the KL over every position of ``x_out`` asks the model to answer as the
  base model does. The paper trains its counterfactual model on in-scope pairs only and relies on the scope
  classifier alone to keep other inputs away; here the classifier's false positives at T=100 are such
  neighbours (:mod:`tools.edit._serac`), so the model also learns to ignore an edit about another subject.

Each step draws ``batch`` training edits, one in-scope and one neighbourhood row each (Adam). The last
``holdout`` examples are kept out of training and scored at the end (teacher-forced target-token accuracy on
their prompts and paraphrases, in ``info``). Deterministic for a seed on CPU. With ``checkpoint`` set, the
model, optimiser and sampler states are written there every ``checkpoint_every`` steps and a run restarted with
the same settings resumes from it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tools.edit._mend_train import MendExample
from tools.edit._protocol import frozen_model
from tools.edit._request import target_text
from tools.edit._serac_cf import CounterfactualModel, counterfactual_for
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["CounterfactualTrainConfig", "train_counterfactual"]
logger = logging.getLogger(__name__)

# a training edit: its request, paraphrases and neighbourhood (the same record MEND trains on)
TrainingEdit = MendExample


@dataclass(frozen=True)
class CounterfactualTrainConfig:
    """Settings of :func:`train_counterfactual`."""

    blocks: int = 4  # the base model's first blocks the counterfactual model keeps (all four of the reference models)
    steps: int = 300  # optimiser steps
    batch: int = 16  # edits per step (one in-scope and one neighbourhood row each)
    lr: float = 3e-4  # Adam learning rate
    locality_weight: float = 1.0  # weight of the neighbourhood KL (0: the paper's in-scope objective alone)
    holdout: int = 64  # examples kept out of training and scored at the end
    checkpoint_every: int = 100  # steps between checkpoints (when a checkpoint path is given)
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.blocks, self.steps, self.batch, self.checkpoint_every) < 1 or self.holdout < 0:
            raise InvalidEditError("serac-train: blocks, steps, batch, checkpoint_every >= 1 and holdout >= 0")
        if not self.lr > 0 or self.locality_weight < 0:
            raise InvalidEditError("serac-train: lr must be > 0 and locality_weight >= 0")


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _pad(rows: list[list[int]], pad: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask ``(B, T)``."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    return ids.to(device), mask.to(device)


class _Rows:
    """Token rows of the training objective for one model and counterfactual template."""

    def __init__(self, model: LocalLanguageModel, cf: CounterfactualModel) -> None:
        self.tok = model.tokenizer
        self.cf = cf
        torch_model: Any = model.model
        self.head = torch_model.get_output_embeddings()
        self.model = model
        pad = self.tok.pad_token_id
        self.pad = int(pad) if pad is not None else 0
        self.device = next(model.model.parameters()).device

    def logits(self, rows: list[list[int]]) -> torch.Tensor:
        ids, mask = _pad(rows, self.pad, self.device)
        return self.head(self.cf.hidden(ids, mask)).float()  # (B, T, V)

    def in_scope(self, items: list[tuple[MendExample, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels ``(B, T)`` of ``z_e + x + target`` (labels on the target tokens only)."""
        rows, spans = [], []
        for ex, x in items:
            req = ex.request
            head = _ids(self.tok, self.cf.edit_text(req.prompt, req.target_new)) + _ids(self.tok, x)
            target = _ids(self.tok, target_text(x, req.target_new))
            rows.append(head + target)
            spans.append((len(head), target))
        logits = self.logits(rows)
        labels = torch.full(logits.shape[:2], -100, dtype=torch.long, device=logits.device)
        for b, (start, target) in enumerate(spans):
            labels[b, start - 1 : start - 1 + len(target)] = torch.tensor(target, device=logits.device)
        return logits, labels

    def neighbourhood_kl(self, items: list[tuple[MendExample, tuple[str, str]]]) -> torch.Tensor:
        """Mean over positions of KL(base(x + answer) ‖ h(z_e + x + answer)), ``z_e`` an edit of another subject."""
        plain, prefixed, starts = [], [], []
        for ex, (prompt, answer) in items:
            row = _ids(self.tok, prompt) + _ids(self.tok, target_text(prompt, answer))
            head = _ids(self.tok, self.cf.edit_text(ex.request.prompt, ex.request.target_new))
            plain.append(row)
            prefixed.append(head + row)
            starts.append(len(head))
        with torch.no_grad():
            ids, mask = _pad(plain, self.pad, self.device)
            base = self.model.model(input_ids=ids, attention_mask=mask).logits.float()
        edited = self.logits(prefixed)
        total, count = torch.zeros((), device=edited.device), 0
        for b, (row, start) in enumerate(zip(plain, starts, strict=True)):
            base_lp = base[b, : len(row)].log_softmax(-1)
            edit_lp = edited[b, start : start + len(row)].log_softmax(-1)
            total = total + (base_lp.exp() * (base_lp - edit_lp)).sum()
            count += len(row)
        return total / max(count, 1)


def _nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100)


def train_counterfactual(
    model: LocalLanguageModel,
    examples: Sequence[MendExample],
    config: CounterfactualTrainConfig,
    *,
    checkpoint: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> CounterfactualModel:
    """Train a counterfactual model for ``model`` on ``examples`` (module docstring); the model is left untouched.

    Returns the model frozen and in eval mode, its ``info`` recording the settings, the number of training
    examples, the held-out accuracy and the training time. ``on_step(step, losses)`` is called after each step.

    Raises:
        InvalidEditError: fewer training examples than one batch.
    """
    train = list(examples[: len(examples) - config.holdout]) if config.holdout else list(examples)
    held = list(examples[len(train) :])
    if len(train) < config.batch:
        raise InvalidEditError(f"serac-train: {len(train)} training examples, fewer than one batch of {config.batch}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    cf = counterfactual_for(model, config.blocks)
    torch_model: Any = model.model
    shared = {id(p) for p in torch_model.get_input_embeddings().parameters()}
    trained = [p for p in cf.module.parameters() if id(p) not in shared]
    opt = torch.optim.Adam(trained, lr=config.lr)
    first, spent = _resume(checkpoint, config, cf, opt, rng)
    rows = _Rows(model, cf)
    start = time.perf_counter()
    with frozen_model(model.model):
        for p in trained:
            p.requires_grad_(True)
        cf.module.train()
        for step in range(first, config.steps):
            batch = rng.sample(train, config.batch)
            inputs = [(e, rng.choice((e.request.prompt, *e.paraphrases))) for e in batch]
            hood = [(e, rng.choice(e.neighbours)) for e in batch if e.neighbours]
            with torch.enable_grad():
                edit = _nll(*rows.in_scope(inputs))
                kl = rows.neighbourhood_kl(hood) if hood and config.locality_weight else torch.zeros(())
                total = edit + config.locality_weight * kl
                opt.zero_grad()
                total.backward()
                opt.step()
            if on_step is not None:
                on_step(step, {"edit": float(edit.detach()), "kl": float(kl.detach())})
            if checkpoint is not None and (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
                _save_checkpoint(checkpoint, config, cf, opt, rng, step + 1, spent + time.perf_counter() - start)
        cf.module.eval()
        for p in trained:
            p.requires_grad_(False)
    seconds = spent + time.perf_counter() - start
    info = {**dataclasses.asdict(config), "examples": len(train), "train_seconds": round(seconds, 1)}
    info["holdout_token_accuracy"] = _holdout_accuracy(rows, held) if held else None
    return dataclasses.replace(cf, info=info)


def _holdout_accuracy(rows: _Rows, held: list[MendExample]) -> float:
    """Teacher-forced top-1 accuracy on the target tokens of the held-out prompts and paraphrases."""
    items = [(e, x) for e in held for x in (e.request.prompt, *e.paraphrases)]
    hits = total = 0
    with torch.no_grad():
        for lo in range(0, len(items), 32):
            logits, labels = rows.in_scope(items[lo : lo + 32])
            keep = labels != -100
            hits += int((logits.argmax(-1)[keep] == labels[keep]).sum())
            total += int(keep.sum())
    return round(hits / max(total, 1), 4)


def _state(cf: CounterfactualModel) -> dict[str, torch.Tensor]:
    skip = cf.embed_path + "."
    return {k: v for k, v in cf.module.state_dict().items() if not k.startswith(skip)}


def _save_checkpoint(
    path: Path,
    config: CounterfactualTrainConfig,
    cf: CounterfactualModel,
    opt: torch.optim.Optimizer,
    rng: random.Random,
    step: int,
    seconds: float,
) -> None:
    state = {
        "config": dataclasses.asdict(config),
        "model": {k: v.detach().clone() for k, v in _state(cf).items()},
        "optimizer": opt.state_dict(),
        "rng": rng.getstate(),
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "seconds": seconds,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: an interrupted write leaves the previous checkpoint
    logger.info("serac-train: checkpoint at step %d -> %s", step, path)


def _resume(
    path: Path | None,
    config: CounterfactualTrainConfig,
    cf: CounterfactualModel,
    opt: torch.optim.Optimizer,
    rng: random.Random,
) -> tuple[int, float]:
    """The step to start from and the seconds already spent (``(0, 0.0)`` without a matching checkpoint)."""
    if path is None or not path.is_file():
        return 0, 0.0
    state = torch.load(path, weights_only=False)
    if state.get("config") != dataclasses.asdict(config):
        logger.warning("serac-train: checkpoint %s was made with other settings; starting afresh", path)
        return 0, 0.0
    with torch.no_grad():
        for name, target in _state(cf).items():
            target.copy_(state["model"][name])
    opt.load_state_dict(state["optimizer"])
    rng.setstate(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    logger.info("serac-train: resuming from step %d of %s", state["step"], path)
    return int(state["step"]), float(state["seconds"])
