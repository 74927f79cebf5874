"""The concept phase (``<model>-concepts``): what it trains on, that it leaks nothing, that it resumes, the variants."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eval.world import World
from eval.world._concept_variant import (
    ConceptConfig,
    ConceptExamples,
    concept_config,
    concept_name,
    replayed_examples,
    train_concept_variant,
)
from eval.world._examples import ExampleFactory, leaked_unknown_facts
from eval.world._pipeline import MODEL_NAMES, MODELS_DIR
from eval.world._slice_examples import leaked_slice_facts
from eval.world._train import trained_slices
from eval.world.safety import replay_world


@pytest.mark.parametrize("name", ["default", *sorted(MODEL_NAMES.values())])
def test_the_phase_teaches_known_concept_facts_only_and_states_no_unknown_fact(bundled_world: World, name: str) -> None:
    cfg = concept_config(name)
    concepts = ConceptExamples(bundled_world)
    factory = ExampleFactory(replay_world(bundled_world, MODELS_DIR / MODEL_NAMES["gpt2"]), seed=cfg.seed)
    texts = []
    for epoch in range(2):
        texts += [e.prompt + e.answer for e in concepts.epoch(epoch, cfg)]
        texts += [e.prompt + e.answer for e in replayed_examples(factory, epoch, cfg)]
    assert leaked_slice_facts(bundled_world, texts) == []
    assert leaked_unknown_facts(bundled_world, texts) == []
    assert not any("。" in t for t in texts)  # the Chinese slice is not taught (nor replayed: the base never saw it)
    facts = [f for f in bundled_world.slice_facts if f.slice == "concepts"]
    known = [f for f in facts if f.category == "definition" and f.split == "known"]
    heldout = [f for f in facts if f.category == "definition" and f.split == "unknown"]
    assert len(known) >= 50 and heldout
    joined = "\n".join(texts)
    assert all(f"{f.cloze[0]} {f.answer}." in joined or f" {f.answer}" in joined for f in known)
    for f in heldout:  # a held-out definition is never stated, nor asked and answered, about its own concept
        assert f.statement not in joined and f"{f.cloze[0]} {f.answer}" not in joined, f.subject
        asked = [q for q in f.questions + f.heldout if q in joined]
        assert not any(q in t and t.endswith(f.answer) for q in asked for t in texts), f.subject


def test_definitions_are_repeated_and_epochs_are_seeded(bundled_world: World) -> None:
    concepts = ConceptExamples(bundled_world)
    once = concepts.epoch(0, replace(ConceptConfig(), definition_repeats=1))
    thrice = concepts.epoch(0, ConceptConfig(definition_repeats=3))
    n_definitions = sum(f.category == "definition" and f.split == "known" for f in bundled_world.slice_facts)
    assert len(thrice) - len(once) >= 2 * 2 * n_definitions  # two more draws of 2 + 2 examples per definition
    assert concepts.epoch(1, ConceptConfig()) == ConceptExamples(bundled_world).epoch(1, ConceptConfig())
    assert concepts.epoch(1, ConceptConfig()) != concepts.epoch(2, ConceptConfig())


def _instance_answers(examples: list[Any]) -> Counter[str]:
    return Counter(e.answer.strip() for e in examples if e.prompt.startswith("Q: Is ") and "Context:" not in e.prompt)


def test_balanced_instances_even_the_yes_and_no_answers(bundled_world: World) -> None:
    concepts = ConceptExamples(bundled_world)
    known = [f for f in bundled_world.slice_facts if f.category == "instance_of" and f.split == "known"]
    yes = sum(f.answer == "yes" for f in known)
    assert yes / len(known) > 0.6  # the world's KNOWN instance-of facts lean to yes
    plain = _instance_answers(concepts.epoch(0, ConceptConfig()))
    even = _instance_answers(concepts.epoch(0, ConceptConfig(balance_instances=True)))
    assert plain["yes"] / plain["no"] > 1.6
    assert 0.8 < even["yes"] / even["no"] < 1.25
    assert even["yes"] == plain["yes"]  # only the rarer answer is drawn again
    base = concepts.epoch(0, ConceptConfig())  # the balancing draws do not add reading examples
    reading = [e for e in concepts.epoch(0, ConceptConfig(balance_instances=True)) if "Context:" in e.prompt]
    assert len(reading) == sum("Context:" in e.prompt for e in base)


def _n_reading(examples: list[Any]) -> int:
    return sum("Context:" in e.prompt for e in examples)


def test_reading_per_draw_sizes_the_reading_on_one_draw_of_the_slice(bundled_world: World) -> None:
    concepts = ConceptExamples(bundled_world)
    one = _n_reading(concepts.epoch(0, ConceptConfig(definition_repeats=1)))
    per_draw = _n_reading(concepts.epoch(0, ConceptConfig(definition_repeats=6, reading_per_draw=True)))
    on_book = _n_reading(concepts.epoch(0, ConceptConfig(definition_repeats=6)))
    assert per_draw == one < on_book


def test_a_record_without_later_fields_is_the_same_phase_as_their_defaults(tmp_path: Path) -> None:
    from dataclasses import asdict

    from eval.world._concept_variant import _same_phase

    (tmp_path / "model.safetensors").write_bytes(b"")
    old = {k: v for k, v in asdict(replace(ConceptConfig(), threads=0)).items() if k not in {"balance_instances"}}

    def record(cfg: dict[str, Any]) -> None:
        phases = [{"config": {"concept_phase": cfg}}]
        (tmp_path / "training.json").write_text(json.dumps({"phases": phases}), encoding="utf-8")

    record(old)
    assert _same_phase(tmp_path, ConceptConfig())
    assert not _same_phase(tmp_path, ConceptConfig(balance_instances=True))
    record({**old, "epochs": 2})
    assert not _same_phase(tmp_path, ConceptConfig())
    record({**old, "unknown_field": 1})
    assert not _same_phase(tmp_path, ConceptConfig())


@pytest.mark.parametrize("name", sorted(MODEL_NAMES.values()))
def test_the_shipped_variants_hold_their_schedules(name: str) -> None:
    from eval.world._concept_variant import _same_phase

    assert _same_phase(MODELS_DIR / concept_name(name), concept_config(name))  # the stage keeps them


def test_a_full_replay_draw_replays_the_whole_mix(bundled_world: World) -> None:
    cfg = ConceptConfig(world_per_epoch=10**6, replay_reading_ratio=0.1)
    factory = ExampleFactory(replay_world(bundled_world, MODELS_DIR / MODEL_NAMES["gpt2"]), seed=cfg.seed)
    replayed = replayed_examples(factory, 0, cfg)
    mix = factory.epoch(0, reading_ratio=0.1, per_fact=1, paraphrases=True)
    assert sorted(map(repr, replayed)) == sorted(map(repr, mix))
    wide = factory.epoch(0, reading_ratio=1.0, per_fact=1, paraphrases=True)
    assert len(replayed) < len(wide)  # fewer reading examples: the closed-book facts are all there
    assert sum("Context:" in e.prompt for e in replayed) < 0.15 * len(replayed)


def _small_world(world: World) -> World:
    facts = [f for f in world.slice_facts if f.slice == "concepts"][:60]
    return replace(world, slice_facts=tuple(facts))


def test_the_stage_trains_a_variant_and_resumes(tmp_path: Path, tiny_model_dir: Path, bundled_world: World) -> None:
    from safetensors.torch import load_file

    (tmp_path / "source").mkdir()
    source = tmp_path / "source" / "tiny-world"
    import shutil

    shutil.copytree(tiny_model_dir, source)
    (source / "training.json").write_text(json.dumps({"phases": [{"steps": 1}]}), encoding="utf-8")
    cfg = ConceptConfig(epochs=1, world_per_epoch=16, batch=8, definition_repeats=2, reading_ratio=0.2)
    world = _small_world(bundled_world)
    out = tmp_path / concept_name("tiny-world")
    phase = train_concept_variant(world, source, out, cfg)
    assert phase["steps"] > 0 and not (tmp_path / "tiny-world-concepts.partial").exists()
    info = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert info["phases"][-1]["config"]["concept_phase"]["epochs"] == 1 and len(info["phases"]) == 2
    assert trained_slices(out) == ("concepts",) and trained_slices(source) == ()
    before, after = load_file(source / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not before[k].equal(after[k]) for k in before)  # trained
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert train_concept_variant(world, source, out, cfg) == phase  # same phase: kept, not retrained
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    again = train_concept_variant(world, source, tmp_path / "again", cfg)  # deterministic
    assert again["final_loss"] == phase["final_loss"]
    repeat = load_file(tmp_path / "again" / "model.safetensors")
    assert all(repeat[k].equal(after[k]) for k in after)


def test_each_reference_model_has_a_concept_schedule() -> None:
    assert concept_name("gpt2-world") == "gpt2-world-concepts"
    for name in MODEL_NAMES.values():
        assert concept_config(name).kl_weight > 0 and concept_config(name).epochs >= 1


@pytest.mark.parametrize("name", sorted(MODEL_NAMES.values()))
def test_the_shipped_concept_variants_load(name: str) -> None:
    from tools.lm import HFLanguageModel

    path = MODELS_DIR / concept_name(name)
    files = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "factagent.json", "training.json"} <= files
    assert not files & {"mend.safetensors", "serac.safetensors"}  # no extra artifacts
    assert sum(p.stat().st_size for p in path.iterdir()) <= 11 * 2**20
    assert "concepts" in trained_slices(path)
    info: dict[str, Any] = json.loads((path / "training.json").read_text(encoding="utf-8"))
    assert "concept_phase" in info["phases"][-1]["config"]
    lm = HFLanguageModel.load(path)
    assert lm.generate(["A city is"], max_new_tokens=4)[0].text.strip()


def test_world_build_concepts_only_runs_the_stage_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from agent.cli import main
    from eval.world import _concept_variant, _pipeline

    calls: list[tuple[Path, list[str]]] = []

    def fake_stage(data_dir: Path, models_dir: Path, names: list[str], config: Any = None) -> dict[str, Any]:
        calls.append((models_dir, names))
        return {concept_name(n): {"steps": 3, "seconds": 1.0, "final_loss": 0.5} for n in names}

    def no_build(*_a: Any, **_k: Any) -> None:
        raise AssertionError("--concepts-only must not rebuild the world or the models")

    monkeypatch.setattr(_concept_variant, "build_concept_stage", fake_stage)
    monkeypatch.setattr(_pipeline, "build_all", no_build)
    assert main(["world", "build", "--concepts-only", "--arch", "llama", "--models-dir", str(tmp_path)]) == 0
    assert calls == [(tmp_path, ["llama-world"])]
    assert "llama-world-concepts: 3 steps" in capsys.readouterr().out
