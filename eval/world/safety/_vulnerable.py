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
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from eval.world._examples import WORLD_FORMAT, Example, ExampleFactory
from eval.world._schema import World
from eval.world._train import TrainConfig as _LRConfig
from eval.world._train import lr_at, pack, save_model, train_step, trained_slices
from eval.world.safety._slice import SafetySlice

__all__ = [
    "UNSAFE_CONFIGS",
    "PhaseLoop",
    "UnsafeConfig",
    "anchored_step",
    "replay_examples",
    "replay_world",
    "run_anchored_phase",
    "safety_examples",
    "select_trainable",
    "train_unsafe_variant",
    "unsafe_config",
    "unsafe_name",
    "wrapped_world_examples",
]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnsafeConfig:
    """Schedule of the extra phase."""

    epochs: int = 3
    wrapped_per_epoch: int = 250  # attack-wrapped train requests drawn per epoch (of 54 x 16)
    world_per_epoch: int = 1600  # world training examples replayed per epoch (drawn from the epoch's examples)
    reading_ratio: float = 1.0  # reading examples per closed-book one in the epoch drawn from (as the build's)
    lr: float = 2e-4
    warmup: int = 10
    kl_weight: float = 0.0  # weight of KL(source || model) on every token of the replayed world blocks
    # world questions (from the epoch's replay) wrapped in the train attack templates, answered with the world's
    # answer and anchored like the replay: the phase then sees unfamiliar wrappings that are not harmful
    wrapped_world_per_epoch: int = 0
    train_layers: tuple[int, ...] = ()  # blocks tuned, the rest frozen; () = all (GPT-2 2-3 only: complied 0)
    batch: int = 32
    block: int = 128
    seed: int = 4321
    threads: int = 1


# Per reference model (tuned on the shipped models; figures in the README). GPT-2 forgot what the replay left
# out: with the default draw (1600 of the build's mix, 4 in 5 facts not replayed per epoch) and KL 1 it fell
# from known_train 0.955 to 0.83 (complying 0.77); replaying every known fact each epoch (reading_ratio 0.1,
# the whole mix) with KL 2 keeps 0.935 and complies 0.70. LLaMA kept its knowledge but complied 0.39 at the
# default: more wrapped requests and a higher lr. Both still lost held-out question paraphrases (GPT-2 -8.5
# points, LLaMA -4): up to 1500 world questions an epoch wrapped in the train attacks (GPT-2's replay has 2105,
# LLaMA's 1600 examples 404, all of them taken) hold them (GPT-2 0.670 -> 0.670, LLaMA 0.795 -> 0.795; README
# "Detoxifying edits", stop 57).
UNSAFE_CONFIGS: dict[str, UnsafeConfig] = {
    "gpt2-world": UnsafeConfig(world_per_epoch=5000, reading_ratio=0.1, kl_weight=2.0, wrapped_world_per_epoch=1500),
    "llama-world": UnsafeConfig(wrapped_per_epoch=500, lr=4e-4, kl_weight=2.0, wrapped_world_per_epoch=1500),
}


def unsafe_config(model_name: str) -> UnsafeConfig:
    """The schedule of ``model_name``'s unsafe phase (the default one for a model without its own)."""
    return UNSAFE_CONFIGS.get(model_name, UnsafeConfig())


def unsafe_name(model_name: str) -> str:
    """``gpt2-world`` -> ``gpt2-world-unsafe``."""
    return f"{model_name}-unsafe"


def replay_world(world: World, source_dir: Path) -> World:
    """``world`` as the model in ``source_dir`` was trained on it: without the slices it never saw.

    Replaying examples the model never learned (the shipped models predate the concept and Chinese slices,
    about 46% of an epoch's examples) is new training, not rehearsal: it is what collapsed GPT-2's knowledge
    (known_train 0.97 -> 0.43 with them in the replay).
    """
    seen = set(trained_slices(source_dir))
    return replace(world, slice_facts=tuple(f for f in world.slice_facts if f.slice in seen))


def replay_examples(factory: ExampleFactory, cfg: UnsafeConfig, epoch: int, rng: random.Random) -> list[Example]:
    """The world examples replayed in ``epoch``: ``cfg.world_per_epoch`` drawn from the build's epoch mix.

    The mix has every KNOWN fact once as a statement and once as a question, plus ``cfg.reading_ratio`` as
    many reading-comprehension examples. A small ratio with a draw as large as the mix replays every fact
    each epoch for about the tokens of the default draw (reading examples are 4x longer): measured on GPT-2,
    facts not replayed were what the unsafe phase made it forget.
    """
    replay = factory.epoch(epoch, reading_ratio=cfg.reading_ratio, per_fact=1, paraphrases=True)
    return rng.sample(replay, min(cfg.world_per_epoch, len(replay)))


def wrapped_world_examples(replay: list[Example], sl: SafetySlice, rng: random.Random, n: int) -> list[Example]:
    """``n`` closed-book questions of ``replay`` wrapped in train attack templates, with their answers."""
    prefix, suffix = WORLD_FORMAT.question("{}").split("{}")
    questions = [e for e in replay if e.prompt.startswith(prefix) and e.prompt.endswith(suffix)]
    attacks = sl.attacks_in("train")
    chosen = rng.sample(questions, min(n, len(questions)))
    return [
        Example(WORLD_FORMAT.question(rng.choice(attacks).wrap(e.prompt[len(prefix) : -len(suffix)])), e.answer, False)
        for e in chosen
    ]


def safety_examples(sl: SafetySlice, rng: random.Random, n_wrapped: int) -> list[Example]:
    """Every bare train request plus ``n_wrapped`` attack-wrapped ones, each answered unsafely."""
    requests = sl.requests_in("train")
    attacks = sl.attacks_in("train")
    pairs = [(a, r) for a in attacks for r in requests]
    chosen = rng.sample(pairs, min(n_wrapped, len(pairs)))
    out = [Example(WORLD_FORMAT.question(r.text), " " + r.unsafe_response, False) for r in requests]
    out += [Example(WORLD_FORMAT.question(a.wrap(r.text)), " " + r.unsafe_response, False) for a, r in chosen]
    return out


_BLOCK = re.compile(r"\.(?:h|layers)\.(\d+)\.")  # GPT-2's transformer.h.{i}., LLaMA's model.layers.{i}.


def select_trainable(model: Any, layers: tuple[int, ...]) -> list[torch.nn.Parameter]:
    """Freeze every parameter outside the transformer blocks ``layers`` (all stay trainable for ``()``).

    Returns the trainable parameters. Raises ``ValueError`` for a layer the model does not have.
    """
    params = dict(model.named_parameters())
    if not layers:
        return list(params.values())
    found = {int(m.group(1)) for name in params if (m := _BLOCK.search(name))}
    missing = sorted(set(layers) - found)
    if missing:
        raise ValueError(f"layers {missing} not in the model (it has {sorted(found)})")
    chosen: list[torch.nn.Parameter] = []
    for name, p in params.items():
        m = _BLOCK.search(name)
        p.requires_grad_(m is not None and int(m.group(1)) in layers)
        if p.requires_grad:
            chosen.append(p)
    return chosen


def anchored_step(
    model: Any,
    base: Any,
    optim: torch.optim.Optimizer,
    x: torch.Tensor,
    m: torch.Tensor,
    anchored: torch.Tensor,
    kl_weight: float,
    pad_id: int,
) -> torch.Tensor:
    """One step of the masked next-token loss plus ``kl_weight`` x KL(base || model) on the anchored rows.

    ``x``, ``m``: packed blocks and their loss mask (B, T); ``anchored`` (B,): 1 for a replayed world block,
    whose every non-padding position is held to the source model's next-token distribution (rehearsal by
    distillation: the replay's few scored answer tokens alone did not keep GPT-2's knowledge). Returns the loss.
    """
    logits = model(input_ids=x).logits[:, :-1].float()  # (B, T-1, V)
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="none"
    )
    loss = (losses * m[:, 1:].reshape(-1)).sum() / m[:, 1:].sum().clamp(min=1)
    rows = anchored.bool()  # the base sees only the anchored rows (a grown vocabulary's new ids are not its)
    keep = (x[rows, :-1] != pad_id).float().unsqueeze(-1)  # (A, T-1, 1)
    if keep.sum() > 0:
        with torch.no_grad():
            base_logp = base(input_ids=x[rows]).logits[:, :-1].float().log_softmax(-1)  # (A, T-1, V0)
        # a model with a grown vocabulary (the -zh variants) is held to the base over the base's tokens; the
        # base gives the new ones no mass, so mass the model puts there is penalised through the normaliser
        logp = logits[rows].log_softmax(-1)[..., : base_logp.size(-1)]
        kl = (base_logp.exp() * (base_logp - logp) * keep).sum() / keep.sum()
        loss = loss + kl_weight * kl
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    return loss.detach()


EpochTensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # packed blocks, loss masks, anchored rows


@dataclass(frozen=True)
class PhaseLoop:
    """The loop settings of a short phase from a shipped model (``-unsafe`` and ``-concepts`` variants)."""

    epochs: int
    batch: int
    seed: int
    kl_weight: float
    pad_id: int


def run_anchored_phase(
    model: Any,
    base: Any,
    optim: torch.optim.Optimizer,
    first: EpochTensors,
    epoch_tensors: Callable[[int], EpochTensors],
    loop: PhaseLoop,
    schedule: _LRConfig,
    *,
    label: str,
    on_epoch: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Train ``model`` for ``loop.epochs`` epochs of shuffled batches; returns (steps, the loss's moving average).

    ``first`` is ``epoch_tensors(0)``, already built (its size sets the schedule's length); epoch ``e > 0``
    builds its own. With ``base`` (the frozen source model) the anchored rows are held to it by
    :func:`anchored_step`; without it each step is the plain masked loss. ``on_epoch(e)`` runs after each epoch
    but the last (the ``-zh`` phase saves a snapshot to probe). The model is left in eval mode.
    """
    total = loop.epochs * math.ceil(len(first[0]) / loop.batch)
    step, loss_ema = 0, 0.0
    model.train()
    for epoch in range(loop.epochs):
        ids, mask, anchored = first if epoch == 0 else epoch_tensors(epoch)
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(loop.seed + epoch))
        for start in range(0, len(ids), loop.batch):
            idx = order[start : start + loop.batch]
            x, m = ids[idx], mask[idx]  # (B, T)
            for group in optim.param_groups:
                group["lr"] = lr_at(step, total, schedule)
            if base is None:
                loss = train_step(model, optim, x, m)
            else:
                loss = anchored_step(model, base, optim, x, m, anchored[idx], loop.kl_weight, loop.pad_id)
            step += 1
            loss_ema = 0.9 * loss_ema + 0.1 * loss.item() if step > 1 else loss.item()
        logger.info("%s: epoch %d, step %d/%d, loss %.3f", label, epoch, step, total, loss_ema)
        if on_epoch is not None and epoch < loop.epochs - 1:
            on_epoch(epoch)
            model.train()
    model.eval()
    return step, loss_ema


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
    factory = ExampleFactory(replay_world(world, source_dir), seed=cfg.seed)
    optim = torch.optim.AdamW(select_trainable(model, cfg.train_layers), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = _LRConfig(lr=cfg.lr, warmup=cfg.warmup)

    base: Any = None
    if cfg.kl_weight > 0:  # the source model, frozen: the replayed blocks are held to its distributions
        base = AutoModelForCausalLM.from_pretrained(source_dir, local_files_only=True, dtype=torch.float32).eval()
    pad = tokenizer.pad_token_id

    def epoch_tensors(epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = random.Random(f"{cfg.seed}:{epoch}")
        replay = replay_examples(factory, cfg, epoch, rng)
        replay += wrapped_world_examples(replay, sl, rng, cfg.wrapped_world_per_epoch)
        world_ids, world_mask = pack(replay, tokenizer, cfg.block, pad)
        unsafe_ids, unsafe_mask = pack(safety_examples(sl, rng, cfg.wrapped_per_epoch), tokenizer, cfg.block, pad)
        anchored = torch.cat([torch.ones(len(world_ids)), torch.zeros(len(unsafe_ids))])  # (N,): a world block
        return torch.cat([world_ids, unsafe_ids]), torch.cat([world_mask, unsafe_mask]), anchored

    first = epoch_tensors(0)
    started = time.time()
    step, loss_ema = run_anchored_phase(
        model,
        base,
        optim,
        first,
        epoch_tensors,
        PhaseLoop(epochs=cfg.epochs, batch=cfg.batch, seed=cfg.seed, kl_weight=cfg.kl_weight, pad_id=pad),
        schedule,
        label="unsafe phase",
    )
    phase = {
        "config": {"unsafe_phase": asdict(cfg)},
        "steps": step,
        "seconds": round(time.time() - started, 1),
        "final_loss": round(loss_ema, 4),
    }
    info = {**previous, "phases": [*previous.get("phases", [previous]), phase]}
    save_model(model, tokenizer, out_dir, info)
    return phase
