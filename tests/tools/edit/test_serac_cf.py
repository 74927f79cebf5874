"""SERAC's trained counterfactual model: the adapter's cached generation equals the counterfactual model decoding
the edit and prompt by hand, out-of-scope rows stay the base model's, the file round-trips and is checked, and
training lowers the in-scope loss and resumes from a checkpoint to the same weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import load_models, same, state
from tools.edit import EditRequest, get_editor, journal_for
from tools.edit._mend_train import MendExample
from tools.edit._serac_adapter import CounterfactualAdapter
from tools.edit._serac_cf import counterfactual_for, load_counterfactual, save_counterfactual
from tools.edit._serac_train import CounterfactualTrainConfig, train_counterfactual
from tools.errors import InvalidEditError

REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang", "company_ceo")
OUTSIDE = "The capital of France is"


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return load_models()


@pytest.fixture(scope="module")
def cf_file(models: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained two-block counterfactual model of GPT-2 (it differs from the base model, which has four)."""
    lm = models["gpt2-world"]
    return save_counterfactual(counterfactual_for(lm, blocks=2), tmp_path_factory.mktemp("serac") / "cf.safetensors")


def _greedy_by_hand(lm: Any, cf_path: Path, prefix: str, prompt: str, steps: int) -> list[int]:
    """Greedy ids of the counterfactual model on ``prefix`` then ``prompt`` (tokenised apart, as the adapter does)."""
    tok = lm.tokenizer
    cf = load_counterfactual(lm.model.transformer, cf_path)
    ids = tok(prefix, add_special_tokens=False)["input_ids"] + tok(prompt, add_special_tokens=False)["input_ids"]
    out: list[int] = []
    with torch.no_grad():
        for _ in range(steps):
            row = torch.tensor([ids + out])
            hidden = cf.hidden(row, torch.ones_like(row))
            out.append(int(lm.model.get_output_embeddings()(hidden)[0, -1].argmax()))
    return out


def test_cached_generation_equals_the_counterfactual_model_by_hand(
    models: dict[str, Any], corpus: Any, cf_file: Path
) -> None:
    lm = models["gpt2-world"]
    before = state(lm)
    plain = lm.generate([OUTSIDE], max_new_tokens=8)[0].text
    serac = get_editor("serac", corpus=corpus, counterfactual="trained", weights=str(cf_file))
    handle = serac.apply(lm, serac.compute(lm, [REQ]))
    assert isinstance(journal_for(lm.model).adapters()["transformer"], CounterfactualAdapter)
    edited = lm.generate([OUTSIDE, REQ.prompt], max_new_tokens=8)  # padded batch, KV cache
    handle.rollback()
    by_hand = _greedy_by_hand(lm, cf_file, f"New Fact: {REQ.prompt} {REQ.target_new}\n", REQ.prompt, 8)
    assert edited[0].text == plain  # out of scope: the base model, untouched
    assert edited[1].text.strip() and lm.tokenizer.decode(by_hand).strip().startswith(edited[1].text.strip())
    assert same(before, state(lm)) and not journal_for(lm.model).adapters()


def test_counterfactual_file_is_checked_and_nothing_changes(
    models: dict[str, Any], corpus: Any, cf_file: Path, tmp_path: Path
) -> None:
    gpt2, llama = models["gpt2-world"], models["llama-world"]
    before = state(llama)
    with pytest.raises(InvalidEditError, match="no input embedding"):  # a GPT-2 file on LLaMA
        load_counterfactual(llama.model.model, cf_file)
    with pytest.raises(InvalidEditError, match="serac-train"):
        get_editor(
            "serac", corpus=corpus, counterfactual="trained", weights=str(tmp_path / "none.safetensors")
        ).compute(llama, [REQ])
    with pytest.raises(InvalidEditError, match="counterfactual"):
        get_editor("serac", corpus=corpus, counterfactual="bogus").compute(llama, [REQ])
    serac = get_editor("serac", corpus=corpus, counterfactual="trained", weights=str(cf_file))
    delta = serac.compute(gpt2, [REQ])
    handle = serac.apply(gpt2, delta)
    ike = get_editor("ike")
    with pytest.raises(InvalidEditError, match="SERAC"):  # another method's demonstration into SERAC's memory
        ike.apply(gpt2, ike.compute(gpt2, [REQ]))
    assert len(journal_for(gpt2.model)) == 1
    handle.rollback()
    assert same(before, state(llama)) and not journal_for(llama.model).entries


def test_file_round_trip_gives_the_same_states(models: dict[str, Any], tmp_path: Path) -> None:
    lm = models["llama-world"]
    cf = counterfactual_for(lm, blocks=1)
    with torch.no_grad():
        next(p for n, p in cf.module.named_parameters() if n.startswith("layers.0.")).add_(0.5)
    loaded = load_counterfactual(lm.model.model, save_counterfactual(cf, tmp_path / "cf.safetensors"))
    ids = torch.tensor([[5, 60, 200, 8]])
    assert torch.equal(cf.hidden(ids, torch.ones_like(ids)), loaded.hidden(ids, torch.ones_like(ids)))
    assert loaded.blocks == 1 and loaded.module.get_submodule("embed_tokens") is lm.model.get_input_embeddings()


def _examples(bundled_world: Any) -> list[MendExample]:
    out = []
    for e in bundled_world.edits[:12]:
        req = EditRequest(e.prompt, e.subject, e.new_object, e.old_object, e.relation)
        paraphrases = tuple(p for p in e.paraphrases if e.subject in p)
        out.append(MendExample(req, paraphrases, tuple((n.text, n.answer) for n in e.neighbourhood)))
    return out


def test_training_learns_and_resumes_to_the_same_weights(
    models: dict[str, Any], bundled_world: Any, tmp_path: Path
) -> None:
    lm = models["gpt2-world"]
    before = state(lm)
    examples = _examples(bundled_world)
    config = CounterfactualTrainConfig(blocks=1, steps=4, batch=4, lr=1e-3, holdout=4, checkpoint_every=2)
    losses: list[float] = []
    straight = train_counterfactual(lm, examples, config, on_step=lambda _s, d: losses.append(d["edit"]))
    assert losses[-1] < losses[0] and straight.info["examples"] == 8

    ckpt = tmp_path / "cf.ckpt"

    def stop(step: int, _losses: dict[str, float]) -> None:
        if step == 2:
            raise KeyboardInterrupt  # interrupted after the step-2 checkpoint was written

    with pytest.raises(KeyboardInterrupt):
        train_counterfactual(lm, examples, config, checkpoint=ckpt, on_step=stop)
    resumed = train_counterfactual(lm, examples, config, checkpoint=ckpt)
    for (name, a), b in zip(straight.module.state_dict().items(), resumed.module.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    assert same(before, state(lm))
