"""The Chinese variants (``gpt2-world-zh``, ``llama-world-zh``): a grown vocabulary and a short extra phase (issue 23).

The shipped reference models are English-only, and the full rebuild that would teach Chinese is not
affordable on the CPU (the one GPU rebuild did not read Chinese contexts: zh context_unknown 0.31 / 0.54).
Instead, as for the ``-concepts`` variants (:mod:`eval.world._concept_variant`), a finished model is taken
further:

1. its vocabulary gains the slice's CJK characters and full-width marks as single tokens
   (:mod:`eval.world._zh_vocab`: English ids unchanged, new rows the mean of the character's byte-token rows);
2. a few epochs teach the KNOWN Chinese slice facts (closed-book cloze, statement and training questions)
   and much Chinese reading comprehension (the stated fact among two distractors in context, the answer
   copied; fictional subjects and other answers, so memory cannot supply it), while replaying the model's
   own English training examples (closed-book and reading) held to the source model's next-token
   distributions (the KL anchor, :func:`~eval.world.safety.anchored_step`, over the source's tokens).

UNKNOWN slice facts are never stated: the examples are the world build's own
(:class:`~eval.world._slice_examples.SliceExamples`), checked by
:func:`~eval.world._slice_examples.leaked_slice_facts`. Deterministic and resumable at the stage's grain like
the concept phase: a variant directory whose ``training.json`` records the same phase is kept; otherwise it
is trained into ``<out>.partial`` and renamed only when finished.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from eval.world._examples import Example, ExampleFactory
from eval.world._schema import World
from eval.world._slice_examples import SliceExamples
from eval.world._train import TrainConfig as _LRConfig
from eval.world._train import pack, save_model, trained_slices
from eval.world._zh_vocab import extend_embeddings, extend_tokenizer, slice_characters, tokens_per_cjk_character
from eval.world.safety._vulnerable import PhaseLoop, replay_world, run_anchored_phase

__all__ = [
    "ZH_SCHEDULES",
    "ZhConfig",
    "build_zh_stage",
    "train_zh_schedule",
    "train_zh_variant",
    "zh_config",
    "zh_epoch",
    "zh_name",
    "zh_replay",
    "zh_schedule",
    "zh_world",
]
logger = logging.getLogger(__name__)
SLICE = "zh"


@dataclass(frozen=True)
class ZhConfig:
    """Schedule of the Chinese phase."""

    epochs: int = 4
    per_fact: int = 2  # closed-book statement-like and question examples per KNOWN Chinese fact, each epoch
    reading_ratio: float = 1.0  # Chinese reading examples per closed-book one
    world_per_epoch: int = 3000  # the model's own English training examples replayed per epoch
    replay_reading_ratio: float = 0.3  # English reading examples per closed-book one in the mix replayed from
    lr: float = 1e-3
    warmup: int = 20
    kl_weight: float = 2.0  # weight of KL(source || model) on every token of the replayed English blocks
    batch: int = 32
    block: int = 128
    seed: int = 2323
    threads: int = 1
    # the KL anchor of the replayed English blocks: "source" = the model this phase starts from (a chain of
    # phases drifts phase by phase), "root" = the English model the variant grew from (the chain's first source)
    anchor: str = "source"

    def __post_init__(self) -> None:
        if self.anchor not in ("source", "root"):
            raise ValueError(f"anchor must be 'source' or 'root', not {self.anchor!r}")


# Per reference model (figures in the README): the phases of its variant, each from the previous one's model.
# LLaMA replays its whole English mix each epoch (every KNOWN fact once as a statement and once as a question,
# and 0.2 as many reading examples), as its concept phase does. Its first phase (3 epochs, 509 steps) left zh
# context_unknown at 0.08 (known_train 0.04); two more reading-heavier phases (reading ratio 1.5) followed: zh
# context_unknown 0.49 after the second. Closed-book Chinese is barely learnt at this length (known_train 0.06).
# After the third, zh context_unknown was 0.84 but English context_unknown had fallen 14 points (each phase held
# to the previous one, so the drift added up); the fourth is held to the English model itself, with three times
# the English reading: zh context_unknown 0.92, English within 2 points of the bundled model, but zh known_train
# 0.28. The fifth is closed-book-heavy (7 epochs, 1,328 steps, lr 1.5e-3): three statement-like and three
# question examples per KNOWN Chinese fact, as many reading ones, and only 5,000 English examples replayed each
# epoch (half of them reading), held to the English model: zh known_train 0.77, zh context_unknown 0.98 (0.88-1.00
# per category), English 0.985 / 0.830 / 0.970 / 0.950 (known_train, known_heldout, context_unknown,
# context_counterfactual; the bundled model 0.988 / 0.795 / 0.950 / 0.945). A sixth like it (5 epochs, 947 steps,
# lr 1e-3): zh known_train 0.84, zh context_unknown 0.95 (0.87-1.00 per category), English 0.973 / 0.805 / 0.955 /
# 0.955.
_READING_HEAVY = ZhConfig(epochs=3, reading_ratio=1.5, world_per_epoch=10**6, replay_reading_ratio=0.2, seed=2324)
_CLOSED_BOOK = ZhConfig(
    epochs=7,
    per_fact=3,
    reading_ratio=1.0,
    world_per_epoch=5000,
    replay_reading_ratio=1.0,
    lr=1.5e-3,
    seed=2327,
    anchor="root",
)
ZH_SCHEDULES: dict[str, tuple[ZhConfig, ...]] = {
    "llama-world": (
        ZhConfig(epochs=3, world_per_epoch=10**6, replay_reading_ratio=0.2),
        _READING_HEAVY,
        replace(_READING_HEAVY, seed=2325),
        replace(_READING_HEAVY, seed=2326, replay_reading_ratio=0.6, anchor="root"),
        _CLOSED_BOOK,
        replace(_CLOSED_BOOK, epochs=5, lr=1e-3, seed=2328),
    ),
}


def zh_config(model_name: str) -> ZhConfig:
    """The first Chinese phase of ``model_name``'s variant (:func:`zh_schedule` has them all)."""
    return zh_schedule(model_name)[0]


def zh_name(model_name: str) -> str:
    """``llama-world`` -> ``llama-world-zh``."""
    return f"{model_name}-zh"


def zh_world(world: World) -> World:
    """``world`` with the Chinese slice only (the slice the phase teaches)."""
    return replace(world, slice_facts=tuple(f for f in world.slice_facts if f.slice == SLICE))


def zh_epoch(examples: SliceExamples, epoch: int, cfg: ZhConfig) -> list[Example]:
    """Closed-book examples of every KNOWN Chinese fact plus ``reading_ratio`` times as many reading ones."""
    rng = random.Random(f"{cfg.seed}:zh:{epoch}")
    book = examples.closed_book(rng, cfg.per_fact)
    return book + examples.reading(rng, int(len(book) * cfg.reading_ratio))


def zh_replay(factory: ExampleFactory, epoch: int, cfg: ZhConfig) -> list[Example]:
    """``world_per_epoch`` of the source model's own English training examples, drawn from the build's epoch
    mix with ``replay_reading_ratio`` reading examples per closed-book one (``factory`` built on
    :func:`~eval.world.safety.replay_world`: nothing the source never learnt is replayed)."""
    rng = random.Random(f"{cfg.seed}:replay:{epoch}")
    replay = factory.epoch(epoch, reading_ratio=cfg.replay_reading_ratio, per_fact=1, paraphrases=True)
    return rng.sample(replay, min(cfg.world_per_epoch, len(replay)))


def _zh_phases(model_dir: Path) -> list[dict[str, Any]]:
    """The ``zh_phase`` configs recorded in ``model_dir``'s ``training.json``, in order."""
    path = model_dir / "training.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    phases = info.get("phases", [])
    return [p["config"]["zh_phase"] for p in phases if isinstance(p, dict) and "zh_phase" in p.get("config", {})]


def _records(recorded: list[dict[str, Any]], schedule: tuple[ZhConfig, ...]) -> bool:
    """``recorded`` (:func:`_zh_phases`) are exactly ``schedule``'s phases, in order."""
    fields = set(asdict(ZhConfig()))
    return len(recorded) == len(schedule) and all(
        isinstance(r, dict) and not set(r) - fields and ZhConfig(**r) == replace(c, threads=0)
        for r, c in zip(recorded, schedule, strict=True)
    )


def _same_phase(out_dir: Path, cfg: ZhConfig, source_dir: Path | None = None) -> bool:
    """``out_dir`` holds a finished model whose last phase is ``cfg`` (and, given ``source_dir``, whose earlier
    Chinese phases are exactly the source's)."""
    if not (out_dir / "model.safetensors").is_file():
        return False
    recorded = _zh_phases(out_dir)
    if not recorded or not isinstance(recorded[-1], dict) or set(recorded[-1]) - set(asdict(cfg)):
        return False
    if source_dir is not None and recorded[:-1] != _zh_phases(source_dir):
        return False
    return ZhConfig(**recorded[-1]) == replace(cfg, threads=0)


def train_zh_variant(
    world: World, source_dir: Path, out_dir: Path, config: ZhConfig | None = None, root_dir: Path | None = None
) -> dict[str, Any]:
    """Grow the vocabulary of the model in ``source_dir`` and train it on the Chinese slice into ``out_dir``.

    ``root_dir``: the English model the chain of phases started from (the KL anchor of a phase whose
    ``anchor`` is ``"root"``; ``source_dir`` itself when not given).

    Returns the phase's facts (steps, seconds, final loss, vocabulary sizes, tokens per CJK character before
    and after), also appended to ``training.json``'s phases; ``training.json``'s ``slices`` gains ``zh`` (so
    ``world check`` scores it). An ``out_dir`` already holding this phase is kept (returned as is).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = config or ZhConfig()
    if _same_phase(out_dir, cfg, source_dir):
        logger.info("%s already holds this Chinese phase: kept", out_dir)
        return dict(json.loads((out_dir / "training.json").read_text(encoding="utf-8"))["phases"][-1])
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    source_tok = AutoTokenizer.from_pretrained(source_dir, local_files_only=True)
    mine = zh_world(world)
    tokenizer = extend_tokenizer(source_tok, slice_characters(mine))
    model: Any = AutoModelForCausalLM.from_pretrained(source_dir, local_files_only=True, dtype=torch.float32)
    old_vocab = model.get_input_embeddings().weight.shape[0]
    new_vocab = extend_embeddings(model, source_tok, tokenizer)
    base: Any = None
    if cfg.kl_weight > 0:  # the source model, frozen: the replayed blocks are held to its distributions
        anchor_dir = (root_dir or source_dir) if cfg.anchor == "root" else source_dir
        base = AutoModelForCausalLM.from_pretrained(anchor_dir, local_files_only=True, dtype=torch.float32).eval()
    previous = json.loads((source_dir / "training.json").read_text(encoding="utf-8"))
    examples = SliceExamples(mine)
    seen = replay_world(world, source_dir)  # English only: a later phase does not hold Chinese to its source
    factory = ExampleFactory(
        replace(seen, slice_facts=tuple(f for f in seen.slice_facts if f.slice != SLICE)), seed=cfg.seed
    )
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = _LRConfig(lr=cfg.lr, warmup=cfg.warmup)
    pad = tokenizer.pad_token_id

    def epoch_tensors(epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        zh, replayed = zh_epoch(examples, epoch, cfg), zh_replay(factory, epoch, cfg)
        z_ids, z_mask = pack(zh, tokenizer, cfg.block, pad)
        w_ids, w_mask = pack(replayed, tokenizer, cfg.block, pad)
        anchored = torch.cat([torch.zeros(len(z_ids)), torch.ones(len(w_ids))])  # (N,): 1 for a replayed block
        return torch.cat([z_ids, w_ids]), torch.cat([z_mask, w_mask]), anchored, len(zh)

    previous = {**previous, "phases": previous.get("phases", [previous])}
    slices = sorted({*trained_slices(source_dir), SLICE})
    staged = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)

    def snapshot(epoch: int) -> None:  # the unfinished model, to probe (``world check --model <out>.partial``)
        model.eval()
        save_model(model, tokenizer, staged, {**previous, "slices": slices, "partial_epochs": epoch + 1})

    first = epoch_tensors(0)
    texts = [t for f in mine.slice_facts for t in (f.statement, *f.questions)]
    started = time.time()
    step, loss_ema = run_anchored_phase(
        model,
        base,
        optim,
        first[:3],
        lambda epoch: epoch_tensors(epoch)[:3],
        PhaseLoop(epochs=cfg.epochs, batch=cfg.batch, seed=cfg.seed, kl_weight=cfg.kl_weight, pad_id=pad),
        schedule,
        label="zh phase",
        on_epoch=snapshot,
    )
    phase = {
        "config": {"zh_phase": asdict(replace(cfg, threads=0))},
        "steps": step,
        "seconds": round(time.time() - started, 1),
        "final_loss": round(loss_ema, 4),
        "zh_examples_epoch0": first[3],
        "vocab_size": [old_vocab, new_vocab],
        "tokens_per_cjk_character": [
            round(tokens_per_cjk_character(source_tok, texts), 3),
            round(tokens_per_cjk_character(tokenizer, texts), 3),
        ],
    }
    info = {**previous, "phases": [*previous["phases"], phase], "slices": slices}
    shutil.rmtree(staged, ignore_errors=True)
    save_model(model, tokenizer, staged, info)
    shutil.rmtree(out_dir, ignore_errors=True)
    staged.rename(out_dir)  # the variant is replaced only by a finished one
    return phase


def zh_schedule(model_name: str) -> tuple[ZhConfig, ...]:
    """The Chinese phases of ``model_name``'s variant, in order (one default phase for a model without its own)."""
    return ZH_SCHEDULES.get(model_name, (ZhConfig(),))


def train_zh_schedule(
    world: World, source_dir: Path, out_dir: Path, schedule: tuple[ZhConfig, ...], checkpoints: Path
) -> list[dict[str, Any]]:
    """Run ``schedule``'s phases one after the other, each from the previous one's model: every phase but the
    last is kept under ``checkpoints/phase<k>`` (so a stopped stage resumes after its last finished phase),
    the last one writes ``out_dir``. Returns each phase's facts. An ``out_dir`` whose ``training.json`` records
    exactly these phases is kept (the shipped variant needs no checkpoints to be kept)."""
    if not schedule:
        raise ValueError("a Chinese schedule needs at least one phase")
    if (out_dir / "model.safetensors").is_file() and _records(_zh_phases(out_dir), schedule):
        logger.info("%s already holds these %d Chinese phases: kept", out_dir, len(schedule))
        info = json.loads((out_dir / "training.json").read_text(encoding="utf-8"))
        return [dict(p) for p in info["phases"] if "zh_phase" in p.get("config", {})]
    phases, source = [], source_dir
    for k, cfg in enumerate(schedule, start=1):
        out = out_dir if k == len(schedule) else checkpoints / f"phase{k}"
        phases.append(train_zh_variant(world, source, out, cfg, root_dir=source_dir))
        source = out
    return phases


def _variant(world_dir: str, source: str, out: str, schedule: tuple[ZhConfig, ...]) -> list[dict[str, Any]]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s zh %(message)s")
    from eval.world._schema import load_world

    checkpoints = Path(source).parent / ".checkpoints" / Path(out).name
    return train_zh_schedule(load_world(Path(world_dir)), Path(source), Path(out), schedule, checkpoints)


def build_zh_stage(
    data_dir: Path, models_dir: Path, model_names: list[str], schedule: tuple[ZhConfig, ...] | None = None
) -> dict[str, Any]:
    """Train each ``<name>-zh`` variant beside ``models_dir/<name>`` (side by side, one thread each).

    ``schedule`` replaces every model's phases; by default each model has its own (:func:`zh_schedule`).
    Returns ``{variant name: its last phase's facts}``. A variant already holding its phases is kept.

    Example:
        >>> build_zh_stage(DATA_DIR, MODELS_DIR, ["llama-world"])  # doctest: +SKIP
    """
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(max(1, len(model_names))) as pool:
        jobs = {
            zh_name(name): pool.apply_async(
                _variant,
                (str(data_dir), str(models_dir / name), str(models_dir / zh_name(name)), schedule or zh_schedule(name)),
            )
            for name in model_names
        }
        return {name: job.get()[-1] for name, job in jobs.items()}
