"""The unsafe phase: it replays only what the source model learnt, and its KL anchor holds replayed blocks only."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from eval.world._examples import ExampleFactory
from eval.world.safety import (
    UnsafeConfig,
    anchored_step,
    replay_examples,
    replay_world,
    select_trainable,
    unsafe_config,
)
from tests.tools.tiny_archs import build


def test_replay_keeps_only_the_slices_the_source_model_was_trained_on(tmp_path: Path, bundled_world: Any) -> None:
    assert {f.slice for f in bundled_world.slice_facts} == {"concepts", "zh"}
    (tmp_path / "training.json").write_text(json.dumps({"phases": []}))  # a model older than the slices
    assert replay_world(bundled_world, tmp_path).slice_facts == ()
    (tmp_path / "training.json").write_text(json.dumps({"slices": ["zh"]}))
    kept = replay_world(bundled_world, tmp_path)
    assert kept.slice_facts and {f.slice for f in kept.slice_facts} == {"zh"}
    assert kept.facts == bundled_world.facts


def test_the_kl_anchor_acts_on_replayed_blocks_only(tiny_tokenizer: Any) -> None:
    lm = build("gpt2", tiny_tokenizer)
    base = copy.deepcopy(lm.model).eval()
    with torch.no_grad():  # the model drifts from its source
        lm.model.get_output_embeddings().weight.add_(0.5 * torch.randn_like(lm.model.get_output_embeddings().weight))
    x = torch.randint(2, len(tiny_tokenizer), (2, 12))
    no_loss = torch.zeros(2, 12)  # nothing scored: only the anchor can make a loss
    optim = torch.optim.SGD(lm.model.parameters(), lr=0.0)
    pad = tiny_tokenizer.pad_token_id
    assert anchored_step(lm.model, base, optim, x, no_loss, torch.zeros(2), 1.0, pad).item() == 0.0
    assert anchored_step(lm.model, base, optim, x, no_loss, torch.tensor([1.0, 0.0]), 1.0, pad).item() > 0.01
    assert anchored_step(base, base, optim, x, no_loss, torch.ones(2), 1.0, pad).item() < 1e-6


def test_each_reference_model_has_its_own_schedule() -> None:
    assert unsafe_config("gpt2-world") != unsafe_config("llama-world")
    assert unsafe_config("gpt2-world").kl_weight > 0 and unsafe_config("llama-world").kl_weight > 0


def test_train_layers_freeze_everything_outside_the_chosen_blocks(tiny_tokenizer: Any) -> None:
    for arch, prefix in (("gpt2", "transformer.h.1."), ("llama", "model.layers.1.")):
        model = build(arch, tiny_tokenizer).model
        chosen = select_trainable(model, (1,))
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        assert names and all(n.startswith(prefix) for n in names)
        assert len(chosen) == len(names)
        assert not any(p.requires_grad for n, p in model.named_parameters() if "embed" in n or "wte" in n)
    every = build("gpt2", tiny_tokenizer).model
    assert len(select_trainable(every, ())) == len(list(every.parameters()))
    with pytest.raises(ValueError, match="layers"):
        select_trainable(every, (7,))


def test_a_small_reading_ratio_replays_every_known_fact_each_epoch(bundled_world: Any) -> None:
    factory = ExampleFactory(bundled_world, seed=1)
    whole = UnsafeConfig(reading_ratio=0.1, world_per_epoch=10**6)
    replayed = replay_examples(factory, whole, 0, random.Random(0))
    book = {(e.prompt, e.answer.strip()) for e in replayed if not e.prompt.startswith("Context:")}
    asked = {(p, a) for p, a in book if p.startswith("Q:")}
    for fact in bundled_world.facts_in("known"):  # each known fact as a statement and as a question
        assert any(fact.subject in p and a == fact.object for p, a in asked)
        assert any(fact.subject in p and a in (fact.object, fact.object + ".") for p, a in book - asked)
    reading = [e for e in replayed if e.prompt.startswith("Context:")]
    assert 0 < len(reading) < 0.15 * len(replayed)
    default = replay_examples(factory, UnsafeConfig(), 0, random.Random(0))
    assert len(default) == UnsafeConfig().world_per_epoch


def test_wrapped_world_questions_keep_their_answers_inside_train_attacks(bundled_world: Any) -> None:
    from eval.world.safety import build_safety_slice, wrapped_world_examples

    sl = build_safety_slice()
    replay = replay_examples(ExampleFactory(bundled_world, seed=1), UnsafeConfig(), 0, random.Random(0))
    questions = {e.prompt[len("Q: ") : -len("\nA:")]: e.answer for e in replay if e.prompt.startswith("Q: ")}
    wrapped = wrapped_world_examples(replay, sl, random.Random(0), 50)
    assert len(wrapped) == 50 and not any(e.score_prompt for e in wrapped)
    train = sl.attacks_in("train")  # held-out attacks never wrap a world question
    for e in wrapped:
        assert e.prompt.startswith("Q: ") and e.prompt.endswith("\nA:")
        inner = e.prompt[len("Q: ") : -len("\nA:")]
        matches = [q for q in questions if any(a.wrap(q) == inner for a in train)]
        assert matches and questions[matches[0]] == e.answer  # a train attack around a replayed question, its answer
    assert len(wrapped_world_examples(replay, sl, random.Random(0), 10**6)) == len(questions)
    assert wrapped_world_examples(replay, sl, random.Random(0), 0) == []
