"""Micro-world training: the project's own training code teaches a micro model ~100 facts in under a minute."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from eval.world import World
from eval.world._build import subset_world
from eval.world._check import run_check
from eval.world._train import TrainConfig, train_model
from tools.lm import HFLanguageModel

MICRO = TrainConfig(
    architecture="gpt2",
    vocab_size=600,
    width=96,
    layers=2,
    heads=2,
    block=96,
    batch=16,
    epochs=40,
    reading_ratio=0.0,
    lr=5e-3,
    warmup=30,
)


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_micro_model_learns_its_facts(bundled_world: World, tmp_path: Path, architecture: str) -> None:
    world = subset_world(bundled_world, ("company_hq", "star_constellation", "person_occupation"), n_known=100)
    assert len(world.facts) == 100
    torch.set_num_threads(2)
    started = time.time()
    config = TrainConfig(**{**MICRO.__dict__, "architecture": architecture})
    train_model(world, config, tmp_path / architecture)
    elapsed = time.time() - started  # ~10 s on an idle 2-core CPU; a timing assert would be flaky under load
    lm = HFLanguageModel.load(tmp_path / architecture)
    figures = run_check(lm, world)
    assert figures["n_known"] == 100
    assert figures["known_train"] >= 0.9, (figures, elapsed)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "factagent.json", "training.json"):
        assert (tmp_path / architecture / name).is_file()


def test_a_later_phase_continues_from_the_saved_model(bundled_world: World, tmp_path: Path) -> None:
    world = subset_world(bundled_world, ("company_hq", "star_constellation"), n_known=30, n_unknown=6)
    first = TrainConfig(**{**MICRO.__dict__, "epochs": 2})
    train_model(world, first, tmp_path / "m")
    tokenizer_before = (tmp_path / "m" / "tokenizer.json").read_text()
    second = TrainConfig(**{**MICRO.__dict__, "epochs": 1, "reading_ratio": 1.0, "reading_weight": 2.0, "seed": 9})
    info = train_model(world, second, tmp_path / "m", init_from=tmp_path / "m")
    assert [p["config"]["epochs"] for p in info["phases"]] == [2, 1]
    assert (tmp_path / "m" / "tokenizer.json").read_text() == tokenizer_before  # same tokenizer, kept
    assert HFLanguageModel.load(tmp_path / "m").generate(["Q: Where is Nokia headquartered?\nA:"])[0].text is not None


@pytest.mark.slow
def test_micro_model_learns_chinese_and_concepts_beside_english(bundled_world: World, tmp_path: Path) -> None:
    from eval.world._slice_check import run_slice_check
    from eval.world._slices import with_slice_subset

    english = subset_world(bundled_world, ("company_hq", "star_constellation"), n_known=30)
    world = with_slice_subset(english, bundled_world, per_category=4, unknown_per_category=1)
    assert sum(f.split == "known" for f in world.slice_facts) == 4 * 11
    torch.set_num_threads(2)
    config = TrainConfig(**{**MICRO.__dict__, "vocab_size": 1200, "block": 128, "epochs": 60, "device": "cpu"})
    train_model(world, config, tmp_path / "m")
    lm = HFLanguageModel.load(tmp_path / "m")
    zh = run_slice_check(lm, world, "zh")
    concepts = run_slice_check(lm, world, "concepts")
    assert set(zh) >= {"all", "poetry_next", "idiom", "phonetic", "logic_trap"}
    # measured once on a loaded 2-core CPU: zh known_train 0.625 after 60 epochs of this micro model (it keeps
    # rising with epochs); closed-book on facts never taught stays far below
    assert zh["all"]["known_train"] >= 0.5 > zh["all"]["unknown"] + 0.2, zh["all"]
    assert {"definition", "instance_of"} <= set(concepts), concepts


def test_a_stopped_phase_resumes_to_the_same_weights(bundled_world: World, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from eval.world._train import RESUME

    world = subset_world(bundled_world, ("company_hq", "star_constellation"), n_known=30)
    config = TrainConfig(**{**MICRO.__dict__, "epochs": 3, "batch": 4, "threads": 1})
    train_model(world, config, tmp_path / "whole", resume_every=3)
    assert not (tmp_path / "whole" / RESUME).exists()  # a finished phase leaves no state behind

    class StopError(Exception):
        pass

    def stop_at_step_8(model: object, tokenizer: object, step: int) -> dict[str, float]:
        raise StopError  # the session ends: the state of step 6 is on disk

    with pytest.raises(StopError):
        train_model(world, config, tmp_path / "cut", probe=stop_at_step_8, probe_every=8, resume_every=3)
    assert (tmp_path / "cut" / RESUME).is_file() and not (tmp_path / "cut" / "model.safetensors").exists()
    info = train_model(world, config, tmp_path / "cut", resume_every=3)
    whole, cut = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert set(whole) == set(cut) and all(torch.equal(whole[k], cut[k]) for k in whole)
    steps = json.loads((tmp_path / "whole" / "training.json").read_text())["steps"]
    assert info["steps"] == steps and steps > 8

    other = TrainConfig(**{**config.__dict__, "vocab_size": 500})  # a state saved for other settings is not used
    with pytest.raises(StopError):
        train_model(world, other, tmp_path / "other", probe=stop_at_step_8, probe_every=8, resume_every=3)
    assert train_model(world, config, tmp_path / "other", resume_every=3)["steps"] == steps
    again = load_file(tmp_path / "other" / "model.safetensors")
    assert all(torch.equal(whole[k], again[k]) for k in whole)  # tokenizer and all: as if never stopped


def test_a_stopped_later_phase_resumes_from_its_own_state(bundled_world: World, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    world = subset_world(bundled_world, ("company_hq", "star_constellation"), n_known=30)
    first = TrainConfig(**{**MICRO.__dict__, "epochs": 1, "batch": 4, "threads": 1})
    second = TrainConfig(**{**first.__dict__, "epochs": 2, "reading_ratio": 1.0, "seed": 9})
    train_model(world, first, tmp_path / "phase1")
    train_model(world, second, tmp_path / "whole", init_from=tmp_path / "phase1", resume_every=4)

    def stop(model: object, tokenizer: object, step: int) -> dict[str, float]:
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):  # the phase's directory does not exist yet when it stops
        train_model(
            world, second, tmp_path / "cut", probe=stop, probe_every=5, init_from=tmp_path / "phase1", resume_every=4
        )
    train_model(world, second, tmp_path / "cut", init_from=tmp_path / "phase1", resume_every=4)
    whole, cut = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
