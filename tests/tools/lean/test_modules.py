"""The lean modules compute what ``transformers``' models compute (issue 30, cold start).

On the two reference models and on tiny random GPT-2 / LLaMA (untied head, grouped-query attention): the same
token ids, the same logits with left and right padding, the same greedy tokens through the KV cache, and the
same answers, scores and next-token distributions through :class:`LeanLanguageModel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.tools import tiny_archs
from tools.lean import LeanTokenizer, load_causal_lm
from tools.lean._common import Packing
from tools.lm import HFLanguageModel, LeanLanguageModel
from tools.lm._greedy import greedy_batches, greedy_rows

WORLD = REPO / "eval" / "world" / "models"
TEXTS = ["Q: Who is the CEO of Nokia?\nA:", "Paris", "Context: Paris is in France.\nQ: Where is Paris?\nA:", "é ü 東京"]
CONTINUATIONS = [" Pekka Lundmark", " is in France.", " France", " x"]
ATOL = 1e-5


@pytest.fixture(scope="module", params=["gpt2-world", "llama-world", "tiny-gpt2", "tiny-llama"])
def model_dir(request: pytest.FixtureRequest, tiny_tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    name = str(request.param)
    if not name.startswith("tiny-"):
        return WORLD / name
    built = tiny_archs.build(name.removeprefix("tiny-"), tiny_tokenizer)
    return tiny_archs.save(built, tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def pair(model_dir: Path) -> tuple[HFLanguageModel, LeanLanguageModel]:
    return HFLanguageModel.load(model_dir, device="cpu"), LeanLanguageModel.load(model_dir, device="cpu")


def test_tokenizer_gives_transformers_ids_and_texts(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    hf, lean = AutoTokenizer.from_pretrained(model_dir, local_files_only=True), LeanTokenizer(model_dir)
    assert (len(lean), lean.pad_token_id, lean.eos_token_id) == (len(hf), hf.pad_token_id, hf.eos_token_id)
    for side in ("left", "right"):
        hf.padding_side = lean.padding_side = side
        a = hf(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
        b = lean(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["attention_mask"], b["attention_mask"])
    ids = hf(TEXTS, add_special_tokens=False)["input_ids"]
    assert lean(TEXTS, add_special_tokens=False)["input_ids"] == ids
    assert lean.batch_decode(ids, skip_special_tokens=True) == hf.batch_decode(ids, skip_special_tokens=True)


def test_logits_equal_transformers_with_either_padding(pair: tuple[HFLanguageModel, LeanLanguageModel]) -> None:
    hf, lean = pair
    tok = hf._tokenizer
    for side in ("left", "right"):
        tok.padding_side = side
        batch = tok(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            want = hf._model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            got = lean._model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        real = batch["attention_mask"].bool()  # padding positions' logits are read by nobody
        assert got.shape == want.shape
        assert (got - want)[real].abs().max().item() <= ATOL


def test_greedy_tokens_through_the_cache_equal_transformers(pair: tuple[HFLanguageModel, LeanLanguageModel]) -> None:
    hf, lean = pair
    tok = hf._tokenizer
    tok.padding_side = "left"
    batch = tok(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
    want = greedy_rows(hf._model, batch["input_ids"], batch["attention_mask"], 12, hf._stop_ids)
    got = greedy_rows(lean._model, batch["input_ids"], batch["attention_mask"], 12, lean._stop_ids)
    assert got.tokens == want.tokens
    assert (got.first - want.first).abs().max().item() <= ATOL


def test_answers_scores_and_distributions_equal_transformers(pair: tuple[HFLanguageModel, LeanLanguageModel]) -> None:
    hf, lean = pair
    prompts = [*TEXTS, hf.prompt_format.question("Who is the CEO of Nokia?")]
    want, got = hf.generate(prompts, max_new_tokens=8), lean.generate(prompts, max_new_tokens=8)
    assert [g.text for g in got] == [g.text for g in want]
    for g, w in zip(got, want, strict=True):
        assert g.first_token_prob == pytest.approx(w.first_token_prob, abs=ATOL)
        assert g.margin == pytest.approx(w.margin, abs=ATOL)
    for mine, ref in zip(lean.score(TEXTS, CONTINUATIONS), hf.score(TEXTS, CONTINUATIONS), strict=True):
        assert mine.n_tokens == ref.n_tokens and mine.logprob == pytest.approx(ref.logprob, abs=1e-4)
    want_dist, got_dist = hf.next_token_distribution(TEXTS[0], 5), lean.next_token_distribution(TEXTS[0], 5)
    assert [t.token for t in got_dist] == [t.token for t in want_dist]
    assert [t.prob for t in got_dist] == pytest.approx([t.prob for t in want_dist], abs=ATOL)
    assert lean.runtime == "lean"  # nothing above asked for transformers' model


def test_an_over_long_prompt_keeps_its_end_as_transformers_does() -> None:
    hf, lean = HFLanguageModel.load(WORLD / "gpt2-world", device="cpu"), LeanLanguageModel.load(WORLD / "gpt2-world")
    long = "Paris is in France. " * 200 + "Q: Where is Paris?\nA:"
    assert [g.text for g in lean.generate([long, "Paris"])] == [g.text for g in hf.generate([long, "Paris"])]


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from tools.errors import ModelLoadError

    model = tmp_path / "gpt2"
    shutil.copytree(WORLD / "gpt2-world", model)
    state = load_file(str(model / "model.safetensors"))
    del state["transformer.ln_f.weight"]
    save_file(state, str(model / "model.safetensors"))
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_causal_lm(model, torch.device("cpu"), torch.float32)


def test_gelu_in_place_is_bit_identical_to_the_written_formula() -> None:
    import math

    from tools.lean._gpt2 import gelu_new

    def written(x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    torch.manual_seed(0)
    for scale in (1e-3, 1.0, 5.0, 30.0):
        x = torch.randn(4, 19, 3072) * scale
        with torch.no_grad():
            assert torch.equal(gelu_new(x), written(x))
    x = torch.randn(3, 8, requires_grad=True)  # with autograd: the out-of-place formula, differentiable
    gelu_new(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_padding_is_packed_away_without_changing_a_real_position(
    pair: tuple[HFLanguageModel, LeanLanguageModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, lean = pair
    tok, model = lean._tokenizer, lean._model
    for side in ("left", "right"):
        tok.padding_side = side
        batch = tok(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
        real = batch["attention_mask"].bool()
        assert Packing.of(batch["attention_mask"], real.shape[1]).padded  # rows of unequal length
        with torch.no_grad():
            packed = model(**batch).logits
            with monkeypatch.context() as m:  # every position through every layer, padding included
                m.setattr(Packing, "of", staticmethod(lambda mask, queries: Packing(mask.shape[0], queries)))
                padded = model(**batch).logits
        assert (packed - padded)[real].abs().max().item() <= 1e-6
        assert packed[~real].abs().max().item() == 0.0  # nothing computed for the padding


def test_logits_at_gives_those_positions_of_the_full_logits(pair: tuple[HFLanguageModel, LeanLanguageModel]) -> None:
    _, lean = pair
    tok, model = lean._tokenizer, lean._model
    tok.padding_side = "right"
    batch = tok(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False)
    at = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
    at[0, 1:3], at[2, 0], at[3, -1] = True, True, True  # row 3's last position is padding
    with torch.no_grad():
        full = model(**batch).logits
        picked = model(**batch, logits_at=at).logits
    assert picked.shape == (int(at.sum()), full.shape[-1])
    assert (picked - full[at]).abs().max().item() <= ATOL  # the head on fewer rows: rounding may differ


def test_batches_decoded_in_step_get_the_tokens_each_gets_alone(
    pair: tuple[HFLanguageModel, LeanLanguageModel],
) -> None:
    hf, lean = pair
    tok = hf._tokenizer
    tok.padding_side = "left"
    groups = []
    for texts in (TEXTS[:2], TEXTS[2:], [TEXTS[0]]):
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        groups.append((batch["input_ids"], batch["attention_mask"]))
    got = greedy_batches(lean._model, groups, 12, lean._stop_ids)
    for rows, (ids, mask) in zip(got, groups, strict=True):
        want = greedy_rows(hf._model, ids, mask, 12, hf._stop_ids)  # transformers', one batch at a time
        assert rows.tokens == want.tokens
        assert (rows.first - want.first).abs().max().item() <= ATOL


def test_a_long_generate_decodes_a_bounded_window_of_chunks_in_step(
    pair: tuple[HFLanguageModel, LeanLanguageModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many length chunks are decoded a few at a time (their KV caches live together), with the answers
    ``transformers``' model gives."""
    import tools.lm._hf as hf_module

    hf, lean = pair
    sizes: list[int] = []
    real = hf_module.greedy_batches

    def counting(model: Any, groups: Any, *args: Any) -> Any:
        sizes.append(len(groups))
        return real(model, groups, *args)

    monkeypatch.setattr(hf_module, "greedy_batches", counting)
    prompts = [f"{text} {'x ' * n}" for n in range(6) for text in TEXTS]  # 24 prompts of many lengths
    got = lean.generate(prompts, max_new_tokens=6, batch_size=2)
    want = hf.generate(prompts, max_new_tokens=6, batch_size=2)
    assert len(sizes) > 1 and max(sizes) <= hf_module._CHUNKS_IN_STEP
    assert [g.text for g in got] == [g.text for g in want]


def test_a_few_texts_one_by_one_and_many_in_a_batch_tokenise_alike(model_dir: Path) -> None:
    lean = LeanTokenizer(model_dir)
    many = [f"{t} {n}" for n in range(20) for t in TEXTS]  # 80 texts: tokenizers' batch call
    ids = lean(many, add_special_tokens=False)["input_ids"]
    assert ids == [lean(t, add_special_tokens=False)["input_ids"] for t in many]  # one by one
    assert (
        lean.batch_decode(ids)
        == [lean.decode(row) for row in ids]
        == lean.batch_decode(ids[:3]) + [lean.decode(row) for row in ids[3:]]
    )
