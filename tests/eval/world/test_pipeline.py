"""Planning of ``factagent world build``: stages and the default curriculum."""

from __future__ import annotations

from eval.world._pipeline import DEFAULT_PHASES, MODEL_NAMES, plan_stages


def test_models_with_more_phases_continue_alone() -> None:
    assert plan_stages({"gpt2": 3, "llama": 2}) == [(0, 2, ["gpt2", "llama"]), (2, 3, ["gpt2"])]


def test_resuming_skips_finished_phases() -> None:
    assert plan_stages({"gpt2": 3, "llama": 2}, from_phase=1) == [(1, 2, ["gpt2", "llama"]), (2, 3, ["gpt2"])]
    assert plan_stages({"gpt2": 3, "llama": 2}, from_phase=2) == [(2, 3, ["gpt2"])]
    assert plan_stages({"gpt2": 3}, from_phase=3) == []


def test_default_curriculum() -> None:
    assert set(DEFAULT_PHASES) == set(MODEL_NAMES)
    for arch, phases in DEFAULT_PHASES.items():
        assert all(p.architecture == arch for p in phases)
        assert not phases[0].paraphrases  # phase 1 uses the core templates only
        assert all(p.paraphrases for p in phases[1:])
        assert len({p.seed for p in phases}) == len(phases)  # each phase draws its own examples
