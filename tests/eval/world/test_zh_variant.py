"""The Chinese variants (``<model>-zh``): the grown vocabulary, what the phase trains on, that it resumes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from eval.world import World
from eval.world._examples import ExampleFactory, leaked_unknown_facts
from eval.world._pipeline import MODEL_NAMES, MODELS_DIR
from eval.world._slice_examples import SliceExamples, leaked_slice_facts
from eval.world._train import trained_slices
from eval.world._zh_variant import ZhConfig, train_zh_variant, zh_config, zh_epoch, zh_name, zh_replay, zh_world
from eval.world._zh_vocab import (
    FULLWIDTH_PUNCTUATION,
    extend_embeddings,
    extend_tokenizer,
    slice_characters,
    tokens_per_cjk_character,
)
from eval.world.safety import replay_world

SOURCE = MODELS_DIR / MODEL_NAMES["llama"]


@pytest.fixture(scope="module")
def tokenizers(bundled_world: World) -> tuple[Any, Any]:
    from transformers import AutoTokenizer

    source = AutoTokenizer.from_pretrained(SOURCE, local_files_only=True)
    return source, extend_tokenizer(source, slice_characters(bundled_world))


def test_english_tokenizes_exactly_as_the_source(bundled_world: World, tokenizers: tuple[Any, Any]) -> None:
    source, grown = tokenizers
    texts = [d.text for d in bundled_world.documents]
    texts += [f.statement for f in bundled_world.slice_facts if f.language == "en"]
    assert len(texts) > 3000
    assert grown(texts, add_special_tokens=False)["input_ids"] == source(texts, add_special_tokens=False)["input_ids"]
    assert grown.get_vocab().items() >= source.get_vocab().items()  # every old id kept
    assert len(grown) > len(source) + 2000 and len(source) == 4096


@pytest.mark.parametrize(
    "text",
    [
        "寥落古行宮，宮花寂寞紅。",
        "「银行」中「行」读作háng。",
        "Acme的CEO是Jane Roe。 Paris is the capital of France.",
        "Q: 法国的首都是哪里？\nA: 巴黎",
        "他说：「好！」；对吗？ 🙂 ok",
        "鬱龘 rare characters outside the slice",
    ],
)
def test_chinese_and_mixed_text_round_trip(tokenizers: tuple[Any, Any], text: str) -> None:
    _source, grown = tokenizers
    assert grown.decode(grown(text, add_special_tokens=False)["input_ids"]) == text


def test_a_cjk_character_is_one_token(bundled_world: World, tokenizers: tuple[Any, Any]) -> None:
    source, grown = tokenizers
    texts = [f.statement for f in bundled_world.slice_facts if f.language == "zh"]
    assert tokens_per_cjk_character(source, texts) > 2.9
    assert tokens_per_cjk_character(grown, texts) == 1.0
    chars = slice_characters(bundled_world)
    assert set(FULLWIDTH_PUNCTUATION) <= set(chars) and len(chars) == len(set(chars))
    assert all(len(grown(c, add_special_tokens=False)["input_ids"]) == 1 for c in chars)
    with pytest.raises(ValueError, match="not single CJK"):
        extend_tokenizer(source, ["ab"])
    with pytest.raises(ValueError, match="not single CJK"):
        extend_tokenizer(source, ["é"])


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_are_the_mean_of_the_byte_token_rows(tokenizers: tuple[Any, Any], tied: bool) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    source, _ = tokenizers
    grown = extend_tokenizer(source, ["法", "国", "，"])
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(source),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        tie_word_embeddings=tied,
    )
    model: Any = LlamaForCausalLM(config)
    before_in = model.get_input_embeddings().weight.detach().clone()
    before_out = model.get_output_embeddings().weight.detach().clone()
    assert extend_embeddings(model, source, grown) == len(source) + 3 == model.config.vocab_size
    emb: torch.Tensor = model.get_input_embeddings().weight
    head: torch.Tensor = model.get_output_embeddings().weight
    assert torch.equal(emb[: len(source)], before_in) and torch.equal(head[: len(source)], before_out)
    for ch in ["法", "国", "，"]:
        new_id = grown.convert_tokens_to_ids(ch)
        parts = source(ch, add_special_tokens=False)["input_ids"]
        assert len(parts) >= 2
        assert torch.allclose(emb[new_id], before_in[parts].mean(0))
        assert torch.allclose(head[new_id], before_out[parts].mean(0))
    assert (emb.data_ptr() == head.data_ptr()) == tied
    assert extend_embeddings(model, source, grown) == len(grown)  # already grown: unchanged


def test_the_phase_teaches_known_chinese_facts_only_and_states_no_unknown_fact(bundled_world: World) -> None:
    cfg = zh_config(MODEL_NAMES["llama"])
    examples = SliceExamples(zh_world(bundled_world))
    factory = ExampleFactory(replay_world(bundled_world, SOURCE), seed=cfg.seed)
    texts: list[str] = []
    zh: list[Any] = []
    for epoch in range(2):
        zh += zh_epoch(examples, epoch, cfg)
        texts += [e.prompt + e.answer for e in zh_replay(factory, epoch, cfg)]
    texts += [e.prompt + e.answer for e in zh]
    assert leaked_slice_facts(bundled_world, texts) == []
    assert leaked_unknown_facts(bundled_world, texts) == []
    reading = [e for e in zh if "Context:" in e.prompt]
    assert len(reading) >= 0.9 * cfg.reading_ratio * (len(zh) - len(reading))  # much reading comprehension
    joined = "\n".join(texts)
    unknown = [f for f in bundled_world.slice_facts if f.slice == "zh" and f.split == "unknown"]
    assert len(unknown) > 400
    assert not any(f.statement in joined for f in unknown)
    assert not any("Concept" in t or " is a kind of " in t for t in texts)  # nor the concept slice


def _tiny_source(tmp_path: Path, tiny_model_dir: Path, bundled_world: World) -> tuple[Path, World]:
    """A tiny source model (a copy) and the world cut to a few Chinese facts of every category (reading draws
    another answer of the fact's category: it needs two)."""
    source = tmp_path / "source" / "tiny-world"
    shutil.copytree(tiny_model_dir, source)
    (source / "training.json").write_text(json.dumps({"phases": [{"steps": 1}]}), encoding="utf-8")
    zh = [f for f in bundled_world.slice_facts if f.slice == "zh"]
    small = [f for f in zh if sum(g.category == f.category for g in zh[: zh.index(f)]) < 4]
    return source, replace(bundled_world, slice_facts=tuple(small))


def test_the_stage_trains_a_variant_and_resumes(tmp_path: Path, tiny_model_dir: Path, bundled_world: World) -> None:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    source, world = _tiny_source(tmp_path, tiny_model_dir, bundled_world)
    cfg = ZhConfig(epochs=2, world_per_epoch=16, batch=16, reading_ratio=0.2)
    out = tmp_path / zh_name("tiny-world")
    phase = train_zh_variant(world, source, out, cfg)
    assert phase["steps"] > 0 and not (tmp_path / "tiny-world-zh.partial").exists()
    old_vocab, new_vocab = phase["vocab_size"]
    assert old_vocab == len(AutoTokenizer.from_pretrained(source, local_files_only=True)) < new_vocab
    assert phase["tokens_per_cjk_character"][0] > 2.9 and phase["tokens_per_cjk_character"][1] == 1.0
    info = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert info["phases"][-1]["config"]["zh_phase"]["epochs"] == 2 and len(info["phases"]) == 2
    assert trained_slices(out) == ("zh",) and trained_slices(source) == ()
    grown = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert len(grown) == new_vocab == json.loads((out / "config.json").read_text())["vocab_size"]
    before, after = load_file(source / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not before[k].equal(after[k]) for k in before if before[k].shape == after[k].shape)  # trained
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert train_zh_variant(world, source, out, cfg) == phase  # same phase: kept, not retrained
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    again = train_zh_variant(world, source, tmp_path / "again", cfg)  # deterministic
    assert again["final_loss"] == phase["final_loss"]
    repeat = load_file(tmp_path / "again" / "model.safetensors")
    assert all(repeat[k].equal(after[k]) for k in after)
    other = train_zh_variant(world, source, out, replace(cfg, epochs=1))  # another phase: retrained
    assert other["steps"] < phase["steps"]


def test_a_root_anchored_phase_is_held_to_the_chain_s_english_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path, bundled_world: World
) -> None:
    """Phase 2 with ``anchor="root"`` loads its frozen anchor from the model the chain started from, not from
    phase 1's model (chained anchors let the English drift add up); ``"source"`` loads the phase's own source."""
    import transformers

    from eval.world._zh_variant import train_zh_schedule

    source, world = _tiny_source(tmp_path, tiny_model_dir, bundled_world)
    loads: list[Path] = []
    original = transformers.AutoModelForCausalLM.from_pretrained

    def spy(path: Path, *args: Any, **kwargs: Any) -> Any:
        loads.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    cfg = ZhConfig(epochs=1, world_per_epoch=16, batch=16, reading_ratio=0.2)
    checkpoints = tmp_path / "checkpoints"
    out = tmp_path / zh_name("tiny-world")
    train_zh_schedule(world, source, out, (cfg, replace(cfg, seed=7, anchor="root")), checkpoints)
    assert loads == [source, source, checkpoints / "phase1", source]  # (model, anchor) per phase
    loads.clear()
    train_zh_schedule(world, source, tmp_path / "chained", (cfg, replace(cfg, seed=7)), tmp_path / "c2")
    assert loads == [source, source, tmp_path / "c2" / "phase1", tmp_path / "c2" / "phase1"]  # chained
    with pytest.raises(ValueError, match="anchor"):
        ZhConfig(anchor="previous")


def test_world_build_zh_only_runs_the_stage_alone(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from agent.cli import main
    from eval.world import _pipeline, _zh_variant

    calls: list[tuple[Path, list[str]]] = []

    def fake_stage(data_dir: Path, models_dir: Path, names: list[str], config: Any = None) -> dict[str, Any]:
        calls.append((models_dir, names))
        return {zh_name(n): {"steps": 3, "seconds": 1.0, "final_loss": 0.5} for n in names}

    def no_build(*_a: Any, **_k: Any) -> None:
        raise AssertionError("--zh-only must not rebuild the world or the models")

    monkeypatch.setattr(_zh_variant, "build_zh_stage", fake_stage)
    monkeypatch.setattr(_pipeline, "build_all", no_build)
    assert main(["world", "build", "--zh-only", "--arch", "llama", "--models-dir", str(tmp_path)]) == 0
    assert calls == [(tmp_path, ["llama-world"])]
    assert "llama-world-zh: 3 steps" in capsys.readouterr().out


def test_the_shipped_llama_variant_records_its_schedule_and_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bundled_world: World
) -> None:
    """``llama-world-zh`` holds exactly the LLaMA schedule's phases (the last one root-anchored), its tokenizer is
    the source's grown by the slice's characters, and the stage keeps it without training or checkpoints."""
    from transformers import AutoTokenizer

    from eval.world import _zh_variant
    from eval.world._zh_variant import train_zh_schedule, zh_schedule

    shipped = MODELS_DIR / zh_name(MODEL_NAMES["llama"])
    schedule = zh_schedule(MODEL_NAMES["llama"])
    assert len(schedule) == 6 and schedule[-1].anchor == "root"
    grown = AutoTokenizer.from_pretrained(shipped, local_files_only=True)
    expected = extend_tokenizer(
        AutoTokenizer.from_pretrained(SOURCE, local_files_only=True), slice_characters(zh_world(bundled_world))
    )
    assert grown.get_vocab() == expected.get_vocab()

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the shipped variant was retrained")

    monkeypatch.setattr(_zh_variant, "train_zh_variant", no_training)
    phases = train_zh_schedule(bundled_world, SOURCE, shipped, schedule, tmp_path / "checkpoints")
    assert [p["config"]["zh_phase"]["seed"] for p in phases] == [c.seed for c in schedule]
    assert not (tmp_path / "checkpoints").exists()
