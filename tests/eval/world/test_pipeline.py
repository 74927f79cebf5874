"""Planning of ``factagent world build``: stages and the default curriculum."""

from __future__ import annotations

from eval.world._pipeline import ALL_MODEL_NAMES, DEFAULT_PHASES, MODEL_NAMES, plan_stages


def test_models_with_more_phases_continue_alone() -> None:
    assert plan_stages({"gpt2": 3, "llama": 2}) == [(0, 2, ["gpt2", "llama"]), (2, 3, ["gpt2"])]


def test_resuming_skips_finished_phases() -> None:
    assert plan_stages({"gpt2": 3, "llama": 2}, from_phase=1) == [(1, 2, ["gpt2", "llama"]), (2, 3, ["gpt2"])]
    assert plan_stages({"gpt2": 3, "llama": 2}, from_phase=2) == [(2, 3, ["gpt2"])]
    assert plan_stages({"gpt2": 3}, from_phase=3) == []


def test_default_curriculum() -> None:
    assert set(DEFAULT_PHASES) == set(ALL_MODEL_NAMES) > set(MODEL_NAMES)  # the larger LLaMA has no variants
    for arch, phases in DEFAULT_PHASES.items():
        assert all(p.architecture == arch.removesuffix("-large") for p in phases)
        assert not phases[0].paraphrases  # phase 1 uses the core templates only
        assert all(p.paraphrases for p in phases[1:])
        assert len({p.seed for p in phases}) == len(phases)  # each phase draws its own examples


def test_a_stopped_build_resumes_from_its_phase_checkpoints(tmp_path, monkeypatch, bundled_world) -> None:  # type: ignore[no-untyped-def]
    import json
    from dataclasses import replace
    from pathlib import Path

    from eval.world import _pipeline
    from eval.world._schema import write_world

    calls: list[tuple[int, str | None]] = []

    def fake_train(world, config, out_dir: Path, probe=None, probe_every=0, init_from=None, resume_every=0):  # type: ignore[no-untyped-def]
        calls.append((config.seed, init_from.name if init_from else None))
        out_dir.mkdir(parents=True)
        (out_dir / "model.safetensors").write_text(str(config.seed))
        info = {"phases": [{"seed": config.seed}]}
        (out_dir / "training.json").write_text(json.dumps(info))
        return info

    monkeypatch.setattr(_pipeline, "train_model", fake_train)
    monkeypatch.setattr(_pipeline, "load_world", lambda _d: bundled_world)
    data = tmp_path / "data"
    write_world(bundled_world, data)
    phases = tuple(replace(p, device="cpu") for p in DEFAULT_PHASES["gpt2"])
    final = tmp_path / "models" / "gpt2-world"
    _pipeline._check_fingerprint(final.parent, _pipeline.fingerprint(data, {"gpt2": phases}))
    _pipeline._train_one(str(data), phases, str(final), 0, 0, 2)
    assert calls == [(1234, None), (1235, "phase1")] and not final.exists()  # not finished: nothing replaced
    calls.clear()
    _pipeline._train_one(str(data), phases, str(final), 0, 0, 3)  # run again: phases 1-2 are skipped
    assert calls == [(1236, "phase2")]
    assert (final / "model.safetensors").read_text() == "1236"
    other = _pipeline.fingerprint(data, {"gpt2": tuple(replace(p, epochs=1) for p in phases)})
    assert other != _pipeline.fingerprint(data, {"gpt2": tuple(replace(p, device="cuda") for p in phases)})
    _pipeline._check_fingerprint(final.parent, other)  # another plan: the checkpoints go
    assert not _pipeline.phase_dir(final, 0).exists()


def test_the_larger_llama_learns_the_english_world_and_has_no_variants() -> None:
    small, large = DEFAULT_PHASES["llama"], DEFAULT_PHASES["llama-large"]
    assert len(large) == len(small) and "llama-large" not in MODEL_NAMES
    for s, b in zip(small, large, strict=True):
        assert (b.width, b.layers, b.mlp) == (256, 8, 1024) and (s.width, s.layers) == (192, 4)
        assert b.vocab_size == 4096 and not b.slices  # what the bundled two were trained on
        assert (b.epochs, b.seed, b.paraphrases, b.reading_ratio) == (s.epochs, s.seed, s.paraphrases, s.reading_ratio)
