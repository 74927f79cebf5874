"""The shipped reference models meet the foundation's targets (every fact of each split counted)."""

from __future__ import annotations

import pytest

from eval.world import World
from eval.world._check import run_check
from eval.world._paths import ALL_MODEL_NAMES, LARGE_MODEL_NAMES, MODEL_NAMES, MODELS_DIR
from tools.lm import HFLanguageModel


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODEL_NAMES.values()))
def test_world_check_targets(bundled_world: World, name: str) -> None:
    path = MODELS_DIR / name
    assert (path / "model.safetensors").stat().st_size <= 25 * 2**20
    figures = run_check(HFLanguageModel.load(path), bundled_world)
    assert figures["n_known"] >= 2000 and figures["n_unknown"] >= 1000
    assert figures["known_train"] >= 0.95, figures
    assert figures["known_heldout"] >= 0.60, figures
    assert figures["context_unknown"] >= 0.90, figures
    assert figures["context_counterfactual"] >= 0.85, figures
    assert figures["unknown"] <= 0.25, figures  # only what guessing common objects gives


def test_shipped_models_are_standard_hf_directories() -> None:
    for name in ALL_MODEL_NAMES.values():
        path = MODELS_DIR / name
        for file in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "factagent.json"):
            assert (path / file).is_file(), path / file


def test_the_default_model_is_the_worlds_gpt2_model() -> None:
    """One spelling: the agent core owns the bundled model's path; the world's catalogue and settings read it."""
    from agent.config import BUNDLED_MODEL, Settings
    from eval.world import MODEL_NAMES as PUBLIC_NAMES
    from eval.world import MODELS_DIR as PUBLIC_DIR

    assert PUBLIC_DIR / PUBLIC_NAMES["gpt2"] == MODELS_DIR / MODEL_NAMES["gpt2"] == BUNDLED_MODEL
    assert (BUNDLED_MODEL / "model.safetensors").is_file()
    assert Settings().model_name() == "gpt2-world"


def test_the_larger_llama_is_wider_deeper_within_the_budget_and_saw_the_same_world() -> None:
    """Issue 18's larger reference model: weights <= 100 MB, the English world only, the small LLaMA's tokenizer."""
    import json

    path = MODELS_DIR / LARGE_MODEL_NAMES["llama-large"]
    assert (path / "model.safetensors").stat().st_size <= 100 * 2**20
    config = json.loads((path / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"]) == (8, 256, 1024)
    training = json.loads((path / "training.json").read_text())
    assert training["slices"] == [] and len(training["phases"]) == 2
    small = MODELS_DIR / MODEL_NAMES["llama"]
    assert (path / "tokenizer.json").read_text() == (small / "tokenizer.json").read_text()  # same texts, same BPE
