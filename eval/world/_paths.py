"""Where the reference world's files live: the data directory and the bundled models (light: no torch)."""

from __future__ import annotations

from pathlib import Path

from agent.config import BUNDLED_MODEL

__all__ = ["DATA_DIR", "MODELS_DIR", "MODEL_NAMES", "WORLD_ROOT"]

WORLD_ROOT = Path(__file__).parent
DATA_DIR = WORLD_ROOT / "data"
# the agent core owns the default model's path (agent.config.BUNDLED_MODEL); the world's other models sit beside it
MODELS_DIR = BUNDLED_MODEL.parent
# architecture -> the bundled model's directory name under MODELS_DIR
MODEL_NAMES = {"gpt2": BUNDLED_MODEL.name, "llama": "llama-world", "llama-large": "llama-world-large"}
