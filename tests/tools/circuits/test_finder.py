"""CircuitFinder on the bundled reference models: faithfulness at the ends of the curve, typed bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tools.circuits import CircuitFinder, FactCase, GraphRunner, circuit_record
from tools.errors import InvalidInputError, UnsupportedLayoutError


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def finder(request: pytest.FixtureRequest) -> CircuitFinder:
    from eval.world._pipeline import MODEL_NAMES, MODELS_DIR
    from tools.lm import HFLanguageModel

    lm = HFLanguageModel.load(MODELS_DIR / MODEL_NAMES[request.param], device="cpu")
    return CircuitFinder(lm.model, lm.tokenizer, steps=3)


CASE = FactCase(
    prompt="The CEO of AMD is",
    subject="AMD",
    answer="Lisa Su",
    corrupt_prompt="The CEO of KLM is",
    corrupt_subject="KLM",
    corrupt_answer="Pieter Elbers",
)


def test_curve_runs_from_nothing_to_everything(finder: CircuitFinder) -> None:
    circuit = finder.find(CASE, fractions=(0.05, 0.1, 1.0))
    assert circuit.n_edges_total == finder.graph.n_edges == 479
    assert [k for _, k, _ in circuit.curve] == [23, 47, 479]
    assert circuit.curve[-1][2] == pytest.approx(1.0, abs=1e-4)
    assert circuit.attribution.metric_clean > circuit.attribution.metric_corrupt
    assert len(circuit.edges) <= 47 and circuit.faithfulness == next(
        v for _, k, v in circuit.curve if k == len(circuit.edges)
    )
    scores = [abs(e.score) for e in circuit.attribution.edges]
    assert scores == sorted(scores, reverse=True)
    assert set(circuit.roles.values()) <= {"embed", "mover_head", "relation_head", "mlp", "logits"}
    record = circuit_record(circuit)
    assert record["n_edges_kept"] == len(record["edges"]) == len(circuit.edges)
    assert circuit.seconds < 60  # the budget per fact on 2 cores


def test_unchanged_model(finder: CircuitFinder) -> None:
    model = finder.runner.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finder.find(CASE, fractions=(0.1,))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"corrupt_prompt": "The CEO of ABB Group is", "corrupt_subject": "ABB Group"}, "tokens"),
        ({"corrupt_answer": "Lisa Other"}, "same token"),
        ({"subject": "Intel"}, "does not occur"),
        ({"answer": " "}, "empty"),
    ],
)
def test_bad_cases_are_typed_errors(finder: CircuitFinder, change: dict[str, Any], message: str) -> None:
    import dataclasses

    with pytest.raises(InvalidInputError, match=message):
        finder.find(dataclasses.replace(CASE, **change))


def test_unknown_layout_is_refused() -> None:
    from transformers import BertConfig, BertForMaskedLM

    model = BertForMaskedLM(
        BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    )
    with pytest.raises(UnsupportedLayoutError, match="GPT-2 and LLaMA"):
        GraphRunner(model)
    with pytest.raises(UnsupportedLayoutError):
        GraphRunner(torch.nn.Linear(2, 2))


def test_lens_follows_the_gold_object_to_the_output(finder: CircuitFinder) -> None:
    circuit = finder.find(CASE, fractions=(0.1,))
    lens = circuit.lens
    assert lens is not None
    n = finder.graph.n_layers
    assert len(lens.logprob) == len(lens.rank) == n + 1 and len(lens.heads) == len(lens.mlps) == n
    ids = finder.tokenizer(CASE.prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    gold = finder.tokenizer(" " + CASE.answer, add_special_tokens=False)["input_ids"][0]
    with torch.no_grad():
        logp = torch.log_softmax(finder.runner.model(ids).logits[0, -1].float(), -1)
    assert lens.logprob[-1] == pytest.approx(float(logp[gold]), abs=1e-3)  # the last depth is the model's output
    assert (lens.rank[-1] == 0) == circuit.gold_is_top
    assert 0 <= lens.moved_until <= n and lens.logprob[lens.moved_until] == max(lens.logprob)
    assert lens.logprob[-1] > lens.logprob[0]


def test_mean_ablation_curve(finder: CircuitFinder) -> None:
    import dataclasses

    mean = CircuitFinder(finder.runner.model, finder.tokenizer, steps=3, mean_ablation=True)
    # with the corrupted prompt as the only reference, its mean is the corrupted run: both curves agree
    alone = mean.find(CASE, fractions=(0.05, 0.1, 1.0))
    assert [v for _, _, v in alone.mean_curve] == pytest.approx([v for _, _, v in alone.curve], abs=1e-4)
    refs = ("The CEO of KLM is", "The CEO of IBM is", "The CEO of SAP is")
    lengths = {len(finder.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in refs}
    want = len(finder.tokenizer(CASE.prompt, add_special_tokens=False)["input_ids"])
    usable = tuple(r for r in refs if len(finder.tokenizer(r, add_special_tokens=False)["input_ids"]) == want)
    assert len(usable) == 2 and len(lengths) == 2  # IBM is shorter (5 tokens)
    circuit = mean.find(dataclasses.replace(CASE, reference_prompts=usable), fractions=(0.1, 1.0))
    assert circuit.mean_curve[-1][2] == pytest.approx(1.0, abs=1e-4)
    assert not finder.find(CASE, fractions=(0.1,)).mean_curve  # measured only when asked
    with pytest.raises(InvalidInputError, match="reference prompt"):
        mean.find(dataclasses.replace(CASE, reference_prompts=("The CEO of the ABB Group is",)))
