"""``factagent world build``: regenerate the world files and both reference models from the sources.

The two models train at the same time in two processes with one torch thread each: on a 2-core CPU that
gives ~30% more total throughput than training them one after the other with two threads each. On a GPU
(``device="cuda"``) both processes share the device and split the CPU cores for example making.

Resumable: every finished phase is saved under ``<models_dir>/.checkpoints/<model>/phase<k>`` beside a
fingerprint of the world files and the phase plan; a build that stops (killed, out of time) and is run
again with the same world and plan skips the phases already done. A different world or plan discards the
checkpoints. The model directory itself is replaced only by a finished model.

After the models, two variant stages run beside them: ``<model>-unsafe`` (:mod:`eval.world.safety`) and
``<model>-concepts`` (:mod:`eval.world._concept_variant`: the concept slice taught to a finished model;
``world build --concepts-only`` runs that stage alone from the models in place), then ``<model>-zh``
(:mod:`eval.world._zh_variant`: CJK characters added to the vocabulary, the Chinese slice taught;
``world build --zh-only``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from eval.world._build import WorldConfig, build_world
from eval.world._lifelong import build_lifelong_edits, write_lifelong_edits
from eval.world._paths import ALL_MODEL_NAMES, DATA_DIR, MODEL_NAMES, MODELS_DIR
from eval.world._schema import World, load_world, write_world
from eval.world._train import RESUME, TrainConfig, portable, train_model

logger = logging.getLogger(__name__)
# Two phases per model. Phase 1 memorises the KNOWN facts under the core templates (with some reading
# comprehension). Phase 2 is reading-heavy, so that the model learns to follow a context that contradicts its
# memory (which does not come by itself: ../shared/PROBES.md, probe B), and replays the facts under more
# phrasings (the relations' paraphrases), so that unseen phrasings map onto the facts it knows.
PHASE_1 = TrainConfig()
PHASE_2 = replace(PHASE_1, epochs=7, reading_ratio=1.0, per_fact=2, paraphrases=True, lr=1e-3, warmup=50, seed=1235)
# GPT-2 (learned positions, GELU MLP) learns both skills more slowly than LLaMA (RoPE, SwiGLU) at this size:
# measured after phase 2 on 100 facts, known_train 0.94 vs 0.98 and context_unknown 0.84 vs 0.96. It gets a
# third, shorter phase of the same mixture at a lower learning rate.
PHASE_3 = replace(PHASE_2, epochs=5, lr=7e-4, warmup=30, seed=1236)
# A larger LLaMA (issue 18: the two above are too narrow and shallow for a side memory of many edits, see
# tools/edit/_wise.py): 8 layers of width 256 with an MLP of 1024 (2x llama-world's), 9.4M parameters (38 MB), on
# the English world the two bundled models learnt (vocabulary 4,096, no slices), with LLaMA's two phases (phase 1 at
# a lower peak rate for the larger model). 2.8 s per step on one thread of this CPU (llama-world: 1.0 s).
LARGE = {"architecture": "llama", "width": 256, "layers": 8, "mlp": 1024, "vocab_size": 4096, "slices": False}
DEFAULT_PHASES: dict[str, tuple[TrainConfig, ...]] = {
    "gpt2": tuple(replace(p, architecture="gpt2") for p in (PHASE_1, PHASE_2, PHASE_3)),
    "llama": tuple(replace(p, architecture="llama") for p in (PHASE_1, PHASE_2)),
    "llama-large": (replace(PHASE_1, lr=2e-3, **LARGE), replace(PHASE_2, **LARGE)),  # type: ignore[arg-type]
}
RESUME_EVERY = 100  # steps between a phase's resumable states (a phase of the larger model outlasts a session)


def _probe(world_dir: str) -> Callable[[Any, Any, int], dict[str, float]]:
    """A quick check on 100 facts per split, logged during training."""

    def probe(model: Any, tokenizer: Any, step: int) -> dict[str, float]:
        from eval.world._check import run_check
        from tools.lm import HFLanguageModel

        lm = HFLanguageModel(model, tokenizer, name=f"step{step}")
        figures = run_check(lm, load_world(world_dir), limit=100)
        return {k: float(v) for k, v in figures.items() if not k.startswith("n_")}

    return probe


CHECKPOINTS = ".checkpoints"


def phase_dir(model_dir: Path, index: int) -> Path:
    """Where phase ``index`` (0-based) of the model bound for ``model_dir`` is checkpointed."""
    return model_dir.parent / CHECKPOINTS / model_dir.name / f"phase{index + 1}"


def _train_one(
    world_dir: str, phases: tuple[TrainConfig, ...], out_dir: str, probe_every: int, from_phase: int, to_phase: int
) -> dict[str, Any]:
    """Run ``phases[from_phase:to_phase]`` for one model, skipping phases already checkpointed.

    Phase ``k`` starts from the checkpoint of phase ``k - 1``; when that is missing but ``out_dir`` holds a
    model (``--from-phase``: resume from the bundled models), that model seeds it. After the last phase the
    finished model replaces ``out_dir``.
    """
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {phases[0].architecture} %(message)s")
    world = load_world(world_dir)
    final = Path(out_dir)
    if from_phase > 0 and not _done(phase_dir(final, from_phase - 1)):
        shutil.copytree(final, phase_dir(final, from_phase - 1), dirs_exist_ok=True)
    info: dict[str, Any] = {}
    for index in range(from_phase, to_phase):
        target = phase_dir(final, index)
        if _done(target):
            logger.info("phase %d already checkpointed in %s", index + 1, target)
            info = json.loads((target / "training.json").read_text(encoding="utf-8"))
            continue
        work = target.with_name(target.name + ".partial")
        if not (work / RESUME).is_file():  # a phase stopped with a saved state goes on from it
            shutil.rmtree(work, ignore_errors=True)
        init = phase_dir(final, index - 1) if index > 0 else None
        info = train_model(
            world,
            phases[index],
            work,
            probe=_probe(world_dir),
            probe_every=probe_every,
            init_from=init,
            resume_every=RESUME_EVERY,
        )
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)  # a checkpoint exists only once its phase is complete
    if to_phase == len(phases):
        staged = final.with_name(final.name + ".partial")
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(phase_dir(final, to_phase - 1), staged)
        shutil.rmtree(final, ignore_errors=True)
        staged.rename(final)  # the bundled model is replaced only by a finished one
    return info


def _done(directory: Path) -> bool:
    return (directory / "training.json").is_file() and (directory / "model.safetensors").is_file()


def fingerprint(data_dir: Path, plans: dict[str, tuple[TrainConfig, ...]]) -> str:
    """A digest of the world files and the phase plans (device and threads aside: they change no result)."""
    digest = hashlib.sha256()
    for path in sorted(data_dir.glob("*.jsonl")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    settings = {a: [portable(c) for c in p] for a, p in sorted(plans.items())}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def _check_fingerprint(models_dir: Path, stamp_text: str) -> None:
    """Discard checkpoints made for another world or plan."""
    root = models_dir / CHECKPOINTS
    stamp = root / "fingerprint.txt"
    if root.is_dir() and (not stamp.is_file() or stamp.read_text(encoding="utf-8") != stamp_text):
        logger.info("checkpoints in %s are for another world or plan: discarded", root)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp.write_text(stamp_text, encoding="utf-8")


def plan_stages(n_phases: dict[str, int], from_phase: int = 0) -> list[tuple[int, int, list[str]]]:
    """Split training into stages ``(first phase, end phase, architectures)``.

    The models that still have phases train side by side and share the cores; a model with more phases
    continues alone, with all of them. ``{"gpt2": 3, "llama": 2}`` gives ``[(0, 2, both), (2, 3, [gpt2])]``.
    """
    stages = []
    start = from_phase
    while running := [a for a, n in n_phases.items() if n > start]:
        end = min(n_phases[a] for a in running)
        stages.append((start, end, running))
        start = end
    return stages


def write_world_files(data_dir: Path = DATA_DIR, world_config: WorldConfig | None = None) -> World:
    """Build the world and write every file of it to ``data_dir``: the world and the lifelong edit pool."""
    world = build_world(world_config)
    write_world(world, data_dir)
    write_lifelong_edits(build_lifelong_edits(world, world_config), data_dir)  # never questions: see _lifelong
    return world


def build_all(
    data_dir: Path = DATA_DIR,
    models_dir: Path = MODELS_DIR,
    world_config: WorldConfig | None = None,
    architectures: tuple[str, ...] = ("gpt2", "llama"),
    epochs: int | None = None,
    probe_every: int = 0,
    from_phase: int = 0,
    device: str = "cpu",
    batch: int | None = None,
    threads: int | None = None,
    phases: dict[str, tuple[TrainConfig, ...]] | None = None,
) -> dict[str, Any]:
    """Write the world to ``data_dir`` and train each architecture into ``models_dir/<name>``.

    ``epochs`` overrides every phase's epochs (quick trials); ``from_phase`` > 0 resumes a build from the
    models already in ``models_dir``; a build run again after a stop resumes from its phase checkpoints
    (module docstring). ``device`` is where the models train, ``batch`` overrides the sequences per step and
    ``threads`` the torch threads per training process (default: the cores shared between the processes).
    ``phases`` replaces the recipe (:data:`DEFAULT_PHASES`; tiny plans in tests).
    """
    started = time.time()
    write_world_files(data_dir, world_config)
    plans = {
        a: tuple(
            replace(c, epochs=epochs or c.epochs, batch=batch or c.batch, device=device)
            for c in (phases or DEFAULT_PHASES)[a]
        )
        for a in architectures
    }
    _check_fingerprint(models_dir, fingerprint(data_dir, plans))
    results: dict[str, Any] = {}
    ctx = mp.get_context("spawn")
    for stage_start, stage_end, running in plan_stages({a: len(plans[a]) for a in architectures}, from_phase):
        per_process = threads or max(1, (os.cpu_count() or 1) // len(running))
        with ctx.Pool(len(running)) as pool:
            jobs = {
                a: pool.apply_async(
                    _train_one,
                    (
                        str(data_dir),
                        tuple(replace(c, threads=per_process) for c in plans[a]),
                        str(models_dir / ALL_MODEL_NAMES[a]),
                        probe_every,
                        stage_start,
                        stage_end,
                    ),
                )
                for a in running
            }
            results.update({a: job.get() for a, job in jobs.items()})
    names = [MODEL_NAMES[a] for a in architectures if a in MODEL_NAMES]
    if not names:  # the larger model alone: no variant stage
        return {"seconds": round(time.time() - started, 1), "models": results}
    from eval.world.safety import build_safety_stage  # last stage: safety slice, judge, <model>-unsafe variants

    safety = build_safety_stage(data_dir, models_dir, names)
    from eval.world._concept_variant import build_concept_stage  # and the <model>-concepts variants

    concepts = build_concept_stage(data_dir, models_dir, names)
    from eval.world._zh_variant import build_zh_stage  # and the <model>-zh variants (grown vocabulary)

    zh = build_zh_stage(data_dir, models_dir, names)
    return {
        "seconds": round(time.time() - started, 1),
        "models": results,
        "safety": safety,
        "concepts": concepts,
        "zh": zh,
    }
