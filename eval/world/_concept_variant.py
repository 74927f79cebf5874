"""The concept variants (``gpt2-world-concepts``, ``llama-world-concepts``): a short extra phase (issue 22).

The shipped reference models predate the concept slice, and the full rebuild that would teach it (and re-measure
every figure of the README) is not affordable on the CPU. Instead, starting from a finished reference model, a
few epochs teach the KNOWN half of the concept slice — the definitions (cloze, statement and questions) and the
KNOWN instance-of facts ("Is X a <concept>?" -> yes / no), with the slice's own reading comprehension — while
replaying a sample of the model's own English training examples, each replayed block held to the source model's
next-token distributions (the KL anchor of the unsafe phase, :func:`~eval.world.safety.anchored_step`), so that
its world-check figures stay where they were. Held-out definitions and instance-of facts are never stated: the
examples are the world build's own (:class:`~eval.world._slice_examples.SliceExamples`), whose leak check
(:func:`~eval.world._slice_examples.leaked_slice_facts`) covers them. The base models are not changed.

Deterministic (seeded example streams, ``torch.manual_seed``) and resumable at the stage's grain: a variant
directory whose ``training.json`` records the same phase config is kept; otherwise it is trained into
``<out>.partial`` and renamed only when finished.
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
from eval.world.safety._vulnerable import PhaseLoop, replay_world, run_anchored_phase

__all__ = [
    "CONCEPT_CONFIGS",
    "ConceptConfig",
    "ConceptExamples",
    "build_concept_stage",
    "concept_config",
    "concept_name",
    "concept_world",
    "replayed_examples",
    "train_concept_variant",
]
logger = logging.getLogger(__name__)
SLICE = "concepts"


@dataclass(frozen=True)
class ConceptConfig:
    """Schedule of the concept phase."""

    epochs: int = 8
    per_fact: int = 2  # closed-book statements and questions drawn per KNOWN concept fact, each epoch
    definition_repeats: int = 3  # definitions are 61 of 652 KNOWN facts: their closed-book examples, repeated
    balance_instances: bool = False  # draw the rarer instance-of answer's facts again until yes ~ no
    reading_ratio: float = 0.5  # slice reading examples per closed-book example
    reading_per_draw: bool = False  # size the reading on one draw of the slice (not on the repeated definitions)
    world_per_epoch: int = 2000  # the model's own English training examples replayed per epoch
    replay_reading_ratio: float = 1.0  # reading examples per closed-book one in the mix the replay is drawn from
    lr: float = 1e-3
    warmup: int = 20
    kl_weight: float = 1.0  # weight of KL(source || model) on every token of the replayed English blocks
    batch: int = 32
    block: int = 128
    seed: int = 2222
    threads: int = 1


# Per reference model (figures in the README). GPT-2 keeps the first schedule: a rebuild with the LLaMA recipe
# below (5 epochs, replay_reading_ratio 0.25) kept its English closed-book figures but read contexts worse
# (context_unknown 0.86 against 0.885) and learnt fewer definitions (0.85 against 0.89), so it was not shipped.
# LLaMA replays its whole English mix of KNOWN facts each epoch (replay_reading_ratio 0.1: 4,631 examples)
# under KL 2 and draws definitions six times and the "no" instance-of facts twice (issue 22, stop 38): the
# earlier draw of 1,200 from the 1.0 mix lost it 12.5 points of held-out paraphrases. It learns the world
# faster than GPT-2 at this size (see eval.world._pipeline): a shorter phase, fewer slice reading examples.
CONCEPT_CONFIGS: dict[str, ConceptConfig] = {
    "gpt2-world": ConceptConfig(),
    "llama-world": ConceptConfig(
        epochs=5,
        definition_repeats=6,
        balance_instances=True,
        reading_ratio=0.3,
        reading_per_draw=True,
        world_per_epoch=5000,
        replay_reading_ratio=0.1,
        kl_weight=2.0,
    ),
}


def concept_config(model_name: str) -> ConceptConfig:
    """The schedule of ``model_name``'s concept phase (the default one for a model without its own)."""
    return CONCEPT_CONFIGS.get(model_name, ConceptConfig())


def concept_name(model_name: str) -> str:
    """``gpt2-world`` -> ``gpt2-world-concepts``."""
    return f"{model_name}-concepts"


def concept_world(world: World) -> World:
    """``world`` with the concept slice only (the slice the phase teaches)."""
    return replace(world, slice_facts=tuple(f for f in world.slice_facts if f.slice == SLICE))


class ConceptExamples:
    """The phase's concept examples for one world: the concept slice, its definitions drawn ``definition_repeats``
    times (61 of 652 KNOWN facts, the longest answers: without repeats the definition cloze is learnt last) and,
    with ``balance_instances``, the instance-of facts of the rarer answer drawn again until "yes" and "no" are
    about even (389 KNOWN facts say yes, 202 no: trained as they come, the variants answered yes to 0.66-0.8 of
    the questions, about what always saying yes scores)."""

    def __init__(self, world: World) -> None:
        mine = concept_world(world)
        self.all = SliceExamples(mine)
        known = [f for f in mine.slice_facts if f.split == "known"]
        definitions = tuple(f for f in mine.slice_facts if f.category == "definition")
        self.definitions = SliceExamples(replace(mine, slice_facts=definitions))
        instances = [f for f in known if f.category == "instance_of"]
        yes = sum(f.answer == "yes" for f in instances)
        rarer = "yes" if yes < len(instances) - yes else "no"
        n_rarer = min(yes, len(instances) - yes)
        # extra draws of the rarer answer's facts: round(majority / minority) - 1 (389 / 202 -> 1)
        self.instance_repeats = round((len(instances) - n_rarer) / n_rarer) - 1 if n_rarer else 0
        rare = tuple(f for f in known if f.category == "instance_of" and f.answer == rarer)
        self.rare_instances = SliceExamples(replace(mine, slice_facts=rare))

    def epoch(self, epoch: int, cfg: ConceptConfig) -> list[Example]:
        """Closed-book examples (definitions repeated, instance-of answers balanced when asked) plus
        ``reading_ratio`` times as many reading examples as the closed-book examples before balancing have
        (as one draw of the slice has, with ``reading_per_draw``)."""
        rng = random.Random(f"{cfg.seed}:concepts:{epoch}")
        book = self.all.closed_book(rng, cfg.per_fact)
        n_reading = int(len(book) * cfg.reading_ratio)
        for _ in range(cfg.definition_repeats - 1):
            book += self.definitions.closed_book(rng, cfg.per_fact)
        if not cfg.reading_per_draw:
            n_reading = int(len(book) * cfg.reading_ratio)
        for _ in range(self.instance_repeats if cfg.balance_instances else 0):
            book += self.rare_instances.closed_book(rng, cfg.per_fact)
        return book + self.all.reading(rng, n_reading)


def replayed_examples(factory: ExampleFactory, epoch: int, cfg: ConceptConfig) -> list[Example]:
    """``world_per_epoch`` of the source model's own English training examples (``factory`` built on
    :func:`~eval.world.safety.replay_world`, so nothing the source never learnt is replayed), drawn from the
    build's epoch mix with ``replay_reading_ratio`` (every KNOWN fact once as a statement and once as a
    question, plus that ratio as many reading examples). A small ratio with a draw as large as the mix replays
    every fact each epoch, as for the ``-unsafe`` variants: a draw of 1,200 of the 8,417 examples of the 1.0
    mix left LLaMA's held-out paraphrases 12.5 points down; the whole 0.1 mix keeps them (0.790 against 0.795) but
    its few reading examples leave counterfactual contexts 6.5 points down (0.880 against 0.945)."""
    rng = random.Random(f"{cfg.seed}:replay:{epoch}")
    replay = factory.epoch(epoch, reading_ratio=cfg.replay_reading_ratio, per_fact=1, paraphrases=True)
    return rng.sample(replay, min(cfg.world_per_epoch, len(replay)))


def _same_phase(out_dir: Path, cfg: ConceptConfig) -> bool:
    path = out_dir / "training.json"
    if not (path.is_file() and (out_dir / "model.safetensors").is_file()):
        return False
    last = json.loads(path.read_text(encoding="utf-8")).get("phases", [{}])[-1]
    recorded = last.get("config", {}).get("concept_phase")
    if not isinstance(recorded, dict) or set(recorded) - set(asdict(cfg)):
        return False
    # a field the record lacks was added later: its default is what that phase did
    return ConceptConfig(**recorded) == replace(cfg, threads=0)


def train_concept_variant(
    world: World, source_dir: Path, out_dir: Path, config: ConceptConfig | None = None
) -> dict[str, Any]:
    """Fine-tune the model in ``source_dir`` on the concept slice into ``out_dir`` (a standard HF directory).

    Returns the phase's facts (steps, seconds, final loss, example counts), also appended to
    ``training.json``'s phases; ``training.json``'s ``slices`` gains ``concepts`` (so ``world check`` scores
    it). An ``out_dir`` already holding this phase is kept (returned as is).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = config or ConceptConfig()
    if _same_phase(out_dir, cfg):
        logger.info("%s already holds this concept phase: kept", out_dir)
        return dict(json.loads((out_dir / "training.json").read_text(encoding="utf-8"))["phases"][-1])
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(source_dir, local_files_only=True)
    model: Any = AutoModelForCausalLM.from_pretrained(source_dir, local_files_only=True, dtype=torch.float32)
    base: Any = None
    if cfg.kl_weight > 0:  # the source model, frozen: the replayed blocks are held to its distributions
        base = AutoModelForCausalLM.from_pretrained(source_dir, local_files_only=True, dtype=torch.float32).eval()
    previous = json.loads((source_dir / "training.json").read_text(encoding="utf-8"))
    examples = ConceptExamples(world)
    factory = ExampleFactory(replay_world(world, source_dir), seed=cfg.seed)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = _LRConfig(lr=cfg.lr, warmup=cfg.warmup)
    pad = tokenizer.pad_token_id

    def epoch_tensors(epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        concepts, replayed = examples.epoch(epoch, cfg), replayed_examples(factory, epoch, cfg)
        c_ids, c_mask = pack(concepts, tokenizer, cfg.block, pad)
        w_ids, w_mask = pack(replayed, tokenizer, cfg.block, pad)
        anchored = torch.cat([torch.zeros(len(c_ids)), torch.ones(len(w_ids))])  # (N,): 1 for a replayed block
        return torch.cat([c_ids, w_ids]), torch.cat([c_mask, w_mask]), anchored, len(concepts)

    first = epoch_tensors(0)
    started = time.time()
    step, loss_ema = run_anchored_phase(
        model,
        base,
        optim,
        first[:3],
        lambda epoch: epoch_tensors(epoch)[:3],
        PhaseLoop(epochs=cfg.epochs, batch=cfg.batch, seed=cfg.seed, kl_weight=cfg.kl_weight, pad_id=pad),
        schedule,
        label="concept phase",
    )
    phase = {
        "config": {"concept_phase": asdict(replace(cfg, threads=0))},
        "steps": step,
        "seconds": round(time.time() - started, 1),
        "final_loss": round(loss_ema, 4),
        "concept_examples_epoch0": first[3],
    }
    slices = sorted({*trained_slices(source_dir), SLICE})
    info = {**previous, "phases": [*previous.get("phases", [previous]), phase], "slices": slices}
    staged = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    save_model(model, tokenizer, staged, info)
    shutil.rmtree(out_dir, ignore_errors=True)
    staged.rename(out_dir)  # the variant is replaced only by a finished one
    return phase


def _variant(world_dir: str, source: str, out: str, config: ConceptConfig) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s concepts %(message)s")
    from eval.world._schema import load_world

    return train_concept_variant(load_world(Path(world_dir)), Path(source), Path(out), config)


def build_concept_stage(
    data_dir: Path, models_dir: Path, model_names: list[str], config: ConceptConfig | None = None
) -> dict[str, Any]:
    """Train each ``<name>-concepts`` variant beside ``models_dir/<name>`` (side by side, one thread each).

    ``config`` replaces every model's schedule; by default each model has its own (:func:`concept_config`).
    Returns ``{variant name: its phase facts}``. A variant already holding its phase is kept.

    Example:
        >>> build_concept_stage(DATA_DIR, MODELS_DIR, ["gpt2-world", "llama-world"])  # doctest: +SKIP
    """
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(max(1, len(model_names))) as pool:
        jobs = {
            concept_name(name): pool.apply_async(
                _variant,
                (
                    str(data_dir),
                    str(models_dir / name),
                    str(models_dir / concept_name(name)),
                    config or concept_config(name),
                ),
            )
            for name in model_names
        }
        return {name: job.get() for name, job in jobs.items()}
