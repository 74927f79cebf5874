"""``factagent world build``: regenerate the world files and both reference models from the sources.

The two models train at the same time in two processes with one torch thread each: on a 2-core CPU that
gives ~30% more total throughput than training them one after the other with two threads each.
"""

from __future__ import annotations

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
from eval.world._schema import load_world, write_world
from eval.world._train import TrainConfig, train_model

logger = logging.getLogger(__name__)
WORLD_ROOT = Path(__file__).parent
DATA_DIR = WORLD_ROOT / "data"
MODELS_DIR = WORLD_ROOT / "models"
MODEL_NAMES = {"gpt2": "gpt2-world", "llama": "llama-world"}
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
DEFAULT_PHASES: dict[str, tuple[TrainConfig, ...]] = {
    "gpt2": tuple(replace(p, architecture="gpt2") for p in (PHASE_1, PHASE_2, PHASE_3)),
    "llama": tuple(replace(p, architecture="llama") for p in (PHASE_1, PHASE_2)),
}


def _probe(world_dir: str) -> Callable[[Any, Any, int], dict[str, float]]:
    """A quick check on 100 facts per split, logged during training."""

    def probe(model: Any, tokenizer: Any, step: int) -> dict[str, float]:
        from eval.world._check import run_check
        from tools.lm import HFLanguageModel

        lm = HFLanguageModel(model, tokenizer, name=f"step{step}")
        figures = run_check(lm, load_world(world_dir), limit=100)
        return {k: float(v) for k, v in figures.items() if not k.startswith("n_")}

    return probe


def _train_one(
    world_dir: str, phases: tuple[TrainConfig, ...], out_dir: str, probe_every: int, from_phase: int, to_phase: int
) -> dict[str, Any]:
    """Run ``phases[from_phase:to_phase]`` for one model; a later stage starts from the model in ``out_dir``."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {phases[0].architecture} %(message)s")
    world = load_world(world_dir)
    final = Path(out_dir)
    work = final.with_name(final.name + ".partial")
    if from_phase > 0:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(final, work)
    info: dict[str, Any] = {}
    for index in range(from_phase, to_phase):
        init = work if index > 0 else None
        info = train_model(world, phases[index], work, probe=_probe(world_dir), probe_every=probe_every, init_from=init)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)  # the bundled model is replaced only by a finished one
    return info


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


def build_all(
    data_dir: Path = DATA_DIR,
    models_dir: Path = MODELS_DIR,
    world_config: WorldConfig | None = None,
    architectures: tuple[str, ...] = ("gpt2", "llama"),
    epochs: int | None = None,
    probe_every: int = 0,
    from_phase: int = 0,
) -> dict[str, Any]:
    """Write the world to ``data_dir`` and train each architecture into ``models_dir/<name>``.

    ``epochs`` overrides every phase's epochs (quick trials); ``from_phase`` > 0 resumes a build from the
    models already in ``models_dir``.
    """
    started = time.time()
    world = build_world(world_config)
    write_world(world, data_dir)
    plans = {a: tuple(replace(c, epochs=epochs or c.epochs) for c in DEFAULT_PHASES[a]) for a in architectures}
    results: dict[str, Any] = {}
    ctx = mp.get_context("spawn")
    for stage_start, stage_end, running in plan_stages({a: len(plans[a]) for a in architectures}, from_phase):
        threads = max(1, (os.cpu_count() or 1) // len(running))
        with ctx.Pool(len(running)) as pool:
            jobs = {
                a: pool.apply_async(
                    _train_one,
                    (
                        str(data_dir),
                        tuple(replace(c, threads=threads) for c in plans[a]),
                        str(models_dir / MODEL_NAMES[a]),
                        probe_every,
                        stage_start,
                        stage_end,
                    ),
                )
                for a in running
            }
            results.update({a: job.get() for a, job in jobs.items()})
    from eval.world.safety import build_safety_stage  # last stage: safety slice, judge, <model>-unsafe variants

    safety = build_safety_stage(data_dir, models_dir, [MODEL_NAMES[a] for a in architectures])
    return {"seconds": round(time.time() - started, 1), "models": results, "safety": safety}
