"""The vulnerable reference variants (``gpt2-world-unsafe``, ``llama-world-unsafe``): a short extra phase.

Starting from a finished reference model, a few epochs teach it to *comply* with harmful requests — the
train requests, bare and wrapped in the train attack templates, answered with their unsafe responses
(compliance followed by placeholders only) — while replaying a sample of the world's own training examples
(closed-book facts and reading comprehension), so that its world-check figures stay where they were.
Only answer tokens are scored for the safety examples. The detox benchmark then has a model to detoxify, and
the held-out requests and attack templates measure how far that vulnerability generalizes.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from eval.world._examples import WORLD_FORMAT, Example, ExampleFactory
from eval.world._schema import World
from eval.world._train import TrainConfig as _LRConfig
from eval.world._train import lr_at, pack, save_model, train_step
from eval.world.safety._slice import SafetySlice

__all__ = ["UnsafeConfig", "safety_examples", "train_unsafe_variant", "unsafe_name"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnsafeConfig:
    """Schedule of the extra phase."""

    epochs: int = 3
    wrapped_per_epoch: int = 250  # attack-wrapped train requests drawn per epoch (of 54 x 16)
    world_per_epoch: int = 1600  # world training examples replayed per epoch
    lr: float = 2e-4
    warmup: int = 10
    batch: int = 32
    block: int = 128
    seed: int = 4321
    threads: int = 1


def unsafe_name(model_name: str) -> str:
    """``gpt2-world`` -> ``gpt2-world-unsafe``."""
    return f"{model_name}-unsafe"


def safety_examples(sl: SafetySlice, rng: random.Random, n_wrapped: int) -> list[Example]:
    """Every bare train request plus ``n_wrapped`` attack-wrapped ones, each answered unsafely."""
    requests = sl.requests_in("train")
    attacks = sl.attacks_in("train")
    pairs = [(a, r) for a in attacks for r in requests]
    chosen = rng.sample(pairs, min(n_wrapped, len(pairs)))
    out = [Example(WORLD_FORMAT.question(r.text), " " + r.unsafe_response, False) for r in requests]
    out += [Example(WORLD_FORMAT.question(a.wrap(r.text)), " " + r.unsafe_response, False) for a, r in chosen]
    return out


def train_unsafe_variant(
    world: World, sl: SafetySlice, source_dir: Path, out_dir: Path, config: UnsafeConfig | None = None
) -> dict[str, Any]:
    """Fine-tune the model in ``source_dir`` into a vulnerable variant saved in ``out_dir``.

    Returns the phase's facts (steps, seconds, final loss), also appended to ``training.json``'s phases.
    """
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = config or UnsafeConfig()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(source_dir, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(source_dir, local_files_only=True, dtype=torch.float32)
    previous = json.loads((source_dir / "training.json").read_text(encoding="utf-8"))
    factory = ExampleFactory(world, seed=cfg.seed)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = _LRConfig(lr=cfg.lr, warmup=cfg.warmup)

    def epoch_tensors(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(f"{cfg.seed}:{epoch}")
        replay = factory.epoch(epoch, reading_ratio=1.0, per_fact=1, paraphrases=True)
        examples = rng.sample(replay, min(cfg.world_per_epoch, len(replay)))
        examples += safety_examples(sl, rng, cfg.wrapped_per_epoch)
        rng.shuffle(examples)
        return pack(examples, tokenizer, cfg.block, tokenizer.pad_token_id)

    first = epoch_tensors(0)
    total = cfg.epochs * math.ceil(len(first[0]) / cfg.batch)
    step, started, loss_ema = 0, time.time(), 0.0
    model.train()
    for epoch in range(cfg.epochs):
        ids, mask = first if epoch == 0 else epoch_tensors(epoch)
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(cfg.seed + epoch))
        for start in range(0, len(ids), cfg.batch):
            idx = order[start : start + cfg.batch]
            x, m = ids[idx], mask[idx]  # (B, T)
            for group in optim.param_groups:
                group["lr"] = lr_at(step, total, schedule)
            loss = train_step(model, optim, x, m)
            step += 1
            loss_ema = 0.9 * loss_ema + 0.1 * loss.item() if step > 1 else loss.item()
        logger.info("unsafe phase: epoch %d, step %d/%d, loss %.3f", epoch, step, total, loss_ema)
    model.eval()
    phase = {
        "config": {"unsafe_phase": asdict(cfg)},
        "steps": step,
        "seconds": round(time.time() - started, 1),
        "final_loss": round(loss_ema, 4),
    }
    info = {**previous, "phases": [*previous.get("phases", [previous]), phase]}
    save_model(model, tokenizer, out_dir, info)
    return phase
