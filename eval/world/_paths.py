"""Where the reference world's files live: the data directory and the bundled models (light: no torch)."""

from __future__ import annotations

from pathlib import Path

from agent.config import BUNDLED_MODEL

__all__ = ["ALL_MODEL_NAMES", "DATA_DIR", "LARGE_MODEL_NAMES", "MODELS_DIR", "MODEL_NAMES", "WORLD_ROOT"]

WORLD_ROOT = Path(__file__).parent
DATA_DIR = WORLD_ROOT / "data"
# the agent core owns the default model's path (agent.config.BUNDLED_MODEL); the world's other models sit beside it
MODELS_DIR = BUNDLED_MODEL.parent
# architecture -> the bundled model's directory name under MODELS_DIR
MODEL_NAMES = {"gpt2": BUNDLED_MODEL.name, "llama": "llama-world"}  # the two the variants are built from
# issue 18's larger LLaMA (8 layers, MLP 1024): trained by the same build, no variants
LARGE_MODEL_NAMES = {"llama-large": "llama-world-large"}
ALL_MODEL_NAMES = {**MODEL_NAMES, **LARGE_MODEL_NAMES}
