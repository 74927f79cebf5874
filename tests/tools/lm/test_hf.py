"""The local Hugging Face backend: contract, scoring maths, batching, and load errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.tools.lm.contract import LanguageModelContract
from tools.errors import FactagentError, InvalidInputError, ModelLoadError, TokenizerMismatchError
from tools.lm import HFLanguageModel, LocalLanguageModel
from tools.lm._hf import length_chunks, pick_device, pick_dtype


@pytest.fixture(scope="module")
def lm(tiny_model_dir: Path) -> HFLanguageModel:
    return HFLanguageModel.load(tiny_model_dir)


class TestHFContract(LanguageModelContract):
    pass


def test_is_local_language_model(lm: HFLanguageModel) -> None:
    assert isinstance(lm, LocalLanguageModel)
    assert isinstance(lm.model, torch.nn.Module)
    assert lm.tokenizer.eos_token_id is not None


def test_device_and_dtype_follow_the_machine(lm: HFLanguageModel) -> None:
    device = pick_device()
    assert lm.device.type == device.type
    assert next(lm.model.parameters()).dtype == pick_dtype(device)


def test_score_equals_sum_of_next_token_logprobs(lm: HFLanguageModel) -> None:
    prompt, continuation = "The capital of France is", " Paris."
    score = lm.score([prompt], [continuation])[0]
    tok = lm.tokenizer
    ids = tok(prompt + continuation, add_special_tokens=False, return_tensors="pt")["input_ids"]
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm.model(ids).logits[0].float(), dim=-1)
    expected = sum(float(logprobs[i - 1, ids[0, i]]) for i in range(n_prompt, ids.shape[1]))
    assert score.n_tokens == ids.shape[1] - n_prompt
    assert score.logprob == pytest.approx(expected, abs=1e-4)
    assert score.logprob < 0


def test_batching_does_not_change_results(lm: HFLanguageModel) -> None:
    prompts = ["Q: Who is the CEO of Nokia?\nA:", "Paris", "Context: Paris is in France.\nQ: Where is Paris?\nA:"]
    conts = [" Pekka Lundmark", " is in France.", " France"]
    batched = lm.score(prompts, conts)
    single = [lm.score([p], [c])[0] for p, c in zip(prompts, conts, strict=True)]
    for b, s in zip(batched, single, strict=True):
        assert b.logprob == pytest.approx(s.logprob, abs=1e-4)
    gens_batched = lm.generate(prompts, max_new_tokens=5)
    gens_single = [lm.generate([p], max_new_tokens=5)[0] for p in prompts]
    assert [g.text for g in gens_batched] == [g.text for g in gens_single]


def test_next_token_distribution_is_sorted_probabilities(lm: HFLanguageModel) -> None:
    dist = lm.next_token_distribution("The capital of France is", top_k=5)
    assert len(dist) == 5
    probs = [t.prob for t in dist]
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1.0 + 1e-5
    first = lm.generate(["The capital of France is"], max_new_tokens=1)[0]
    assert first.first_token_prob == pytest.approx(probs[0], abs=1e-4)


def test_score_length_mismatch_is_an_error(lm: HFLanguageModel) -> None:
    with pytest.raises(ValueError, match="same length"):
        lm.score(["a", "b"], ["c"])


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        HFLanguageModel.load(tmp_path / "nope")


def test_directory_without_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    broken = tmp_path / "noweights"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no model weights"):
        HFLanguageModel.load(broken)


def test_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        HFLanguageModel.load(tmp_path)


def test_corrupt_weights(tmp_path: Path, tiny_model_dir: Path) -> None:
    broken = tmp_path / "corrupt"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(FactagentError):
        HFLanguageModel.load(broken)


def test_tokenizer_that_does_not_match_the_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    small = tmp_path / "small-vocab"
    shutil.copytree(tiny_model_dir, small)
    config = json.loads((small / "config.json").read_text())
    import safetensors.torch

    tensors = safetensors.torch.load_file(small / "model.safetensors")
    n = 50  # shrink the embeddings below the tokenizer's vocabulary
    for key in list(tensors):
        if tensors[key].shape[0] == config["vocab_size"]:
            tensors[key] = tensors[key][:n].contiguous()
    config["vocab_size"] = n
    (small / "config.json").write_text(json.dumps(config))
    safetensors.torch.save_file(tensors, small / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(TokenizerMismatchError, match="tokenizer has"):
        HFLanguageModel.load(small)


def test_length_chunks_group_similar_lengths_and_cover_every_index() -> None:
    texts = ["a" * 200, "b", "c" * 10, "d" * 205, "e" * 30, "f" * 12]
    chunks = length_chunks(texts, batch_size=2)
    assert sorted(i for c in chunks for i in c) == list(range(len(texts)))
    assert chunks == [[1, 2], [5, 4], [0, 3]]  # short with short, long with long, at most 2 a chunk
    assert length_chunks([], 4) == []


def test_mixed_lengths_answer_in_the_given_order(lm: HFLanguageModel) -> None:
    prompts = ["Paris is the capital of " * 8, "Hi", "The capital of France is", "x " * 60]
    together = lm.generate(prompts, max_new_tokens=4)
    alone = [lm.generate([p], max_new_tokens=4)[0] for p in prompts]
    assert [g.text for g in together] == [g.text for g in alone]
    scored = lm.score(prompts, [" a"] * 4)
    assert [round(s.logprob, 3) for s in scored] == [round(lm.score([p], [" a"])[0].logprob, 3) for p in prompts]


def test_an_over_long_prompt_keeps_its_end(lm: HFLanguageModel) -> None:
    # a prompt longer than the model's positions used to index past the position embeddings (IndexError)
    limit = lm.model.config.n_positions
    tail = " Q: Where is Paris?\nA:"
    long_prompt = "word " * (2 * limit) + tail
    gen = lm.generate([long_prompt, "Paris"], max_new_tokens=4)
    assert len(gen) == 2 and gen[1] == lm.generate(["Paris"], max_new_tokens=4)[0]
    score = lm.score([long_prompt, "Paris"], [" France", " is"])
    assert score[0].n_tokens == len(lm.tokenizer(long_prompt + " France", add_special_tokens=False)["input_ids"]) - len(
        lm.tokenizer(long_prompt, add_special_tokens=False)["input_ids"]
    )
    assert score[1] == lm.score(["Paris"], [" is"])[0]
    # the cut keeps the end: scoring after the whole prompt equals scoring after its last positions
    ids = lm.tokenizer(long_prompt, add_special_tokens=False)["input_ids"]
    kept = lm.tokenizer.decode(ids[-(limit - score[0].n_tokens) :])
    assert score[0].logprob == pytest.approx(lm.score([kept], [" France"])[0].logprob, abs=1e-3)


def test_a_continuation_longer_than_the_model_reads_is_a_typed_error(lm: HFLanguageModel) -> None:
    with pytest.raises(InvalidInputError, match="positions"):
        lm.score(["Q:"], [" word" * (2 * lm.model.config.n_positions)])


def test_score_after_an_empty_prompt_is_a_typed_error(lm: HFLanguageModel) -> None:
    with pytest.raises(InvalidInputError, match="non-empty prompt"):
        lm.score(["Q:", ""], [" a", "Paris"])
