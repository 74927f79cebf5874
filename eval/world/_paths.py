"""Where the reference world's files live: the data directory and the bundled models (light: no torch)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "MODELS_DIR", "MODEL_NAMES", "WORLD_ROOT"]

WORLD_ROOT = Path(__file__).parent
DATA_DIR = WORLD_ROOT / "data"
MODELS_DIR = WORLD_ROOT / "models"
# architecture -> the bundled model's directory name under MODELS_DIR
MODEL_NAMES = {"gpt2": "gpt2-world", "llama": "llama-world"}
