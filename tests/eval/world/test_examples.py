"""Training examples: no UNKNOWN fact is ever taught; reading examples are answerable from context only."""

from __future__ import annotations

import pytest

from eval.world import Fact, World
from eval.world._examples import ExampleFactory, leaked_unknown_facts


@pytest.fixture(scope="module")
def factory(bundled_world: World) -> ExampleFactory:
    return ExampleFactory(bundled_world, seed=1234)


def test_no_unknown_fact_in_training_text(bundled_world: World, factory: ExampleFactory) -> None:
    texts = [e.prompt + e.answer for e in factory.closed_book()]
    texts += [e.prompt + e.answer for epoch in range(2) for e in factory.epoch(epoch, reading_ratio=0.6)]
    assert leaked_unknown_facts(bundled_world, texts) == []


def test_leak_detector_finds_a_stated_fact(bundled_world: World) -> None:
    fact = bundled_world.facts_in("unknown")[0]
    text = f"Context: {bundled_world.documents[int(fact.id[1:])].text}\nQ: ?\nA: {fact.object}"
    assert any(f.id == fact.id for f, _ in leaked_unknown_facts(bundled_world, [text]))
    longer = Fact(id="x", relation=fact.relation, subject=fact.subject + " Junior", object=fact.object, split="known")
    assert leaked_unknown_facts(bundled_world, [f"{longer.subject} and {longer.object}."]) == []


@pytest.mark.slow
def test_every_token_of_unknown_entities_is_trained(bundled_world: World, factory: ExampleFactory) -> None:
    # the trap seen in probes: a token that occurs in no training text keeps a random embedding, and the
    # model cannot even copy an UNKNOWN name from its context
    from eval.world._train import TrainConfig, train_tokenizer

    config = TrainConfig()
    texts = [e.prompt + e.answer for e in factory.epoch(0, config.reading_ratio)]
    tokenizer = train_tokenizer(texts, config.vocab_size)  # as train_model does
    seen: set[int] = set()
    for epoch in range(config.epochs):
        batch = [e.prompt + e.answer for e in factory.epoch(epoch, config.reading_ratio)]
        seen.update(t for ids in tokenizer(batch, add_special_tokens=False)["input_ids"] for t in ids)
    names = sorted({n for f in bundled_world.facts_in("unknown") for n in (f.subject, " " + f.object)})
    needed = {t for ids in tokenizer(names, add_special_tokens=False)["input_ids"] for t in ids}
    assert len(needed - seen) / len(needed) < 0.005


def test_reading_answers_are_in_the_context(factory: ExampleFactory) -> None:
    import random

    for ex in factory.reading(random.Random(0), 300):
        context = ex.prompt.split("\n")[0]
        assert ex.answer.strip().rstrip(".") in context
        assert not ex.score_prompt


def test_epochs_are_reproducible(factory: ExampleFactory) -> None:
    assert factory.epoch(3, 0.5) == factory.epoch(3, 0.5)
    assert factory.epoch(3, 0.5) != factory.epoch(4, 0.5)
