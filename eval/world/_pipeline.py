"""``factagent world build``: regenerate the world files and both reference models from the sources.

The two models train at the same time in two processes with one torch thread each: on a 2-core CPU that
gives ~30% more total throughput than training them one after the other with two threads each.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
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
DEFAULT_TRAIN = {
    "gpt2": TrainConfig(architecture="gpt2"),
    "llama": TrainConfig(architecture="llama"),
}


def _probe(world_dir: str):  # type: ignore[no-untyped-def]
    def probe(model: Any, tokenizer: Any, step: int) -> dict[str, float]:
        from eval.world._check import run_check
        from tools.lm import HFLanguageModel

        lm = HFLanguageModel(model, tokenizer, name=f"step{step}")
        figures = run_check(lm, load_world(world_dir), limit=100)
        return {k: float(v) for k, v in figures.items() if not k.startswith("n_")}

    return probe


def _train_one(world_dir: str, config: TrainConfig, out_dir: str, probe_every: int) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {config.architecture} %(message)s")
    world = load_world(world_dir)
    return train_model(world, config, Path(out_dir), probe=_probe(world_dir), probe_every=probe_every)


def build_all(
    data_dir: Path = DATA_DIR,
    models_dir: Path = MODELS_DIR,
    world_config: WorldConfig | None = None,
    architectures: tuple[str, ...] = ("gpt2", "llama"),
    epochs: int | None = None,
    probe_every: int = 0,
) -> dict[str, Any]:
    """Write the world to ``data_dir`` and train each architecture into ``models_dir/<name>``."""
    started = time.time()
    world = build_world(world_config)
    write_world(world, data_dir)
    configs = {
        a: DEFAULT_TRAIN[a] if epochs is None else replace(DEFAULT_TRAIN[a], epochs=epochs) for a in architectures
    }
    threads = max(1, (os.cpu_count() or 1) // len(configs))
    configs = {a: replace(c, threads=threads) for a, c in configs.items()}
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(configs)) as pool:
        jobs = {
            a: pool.apply_async(_train_one, (str(data_dir), c, str(models_dir / MODEL_NAMES[a]), probe_every))
            for a, c in configs.items()
        }
        results = {a: job.get() for a, job in jobs.items()}
    return {"seconds": round(time.time() - started, 1), "models": results}
