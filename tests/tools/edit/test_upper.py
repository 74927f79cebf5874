"""The blocks-below cache and the fused activation of the value optimisation (tools.edit._upper)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import load_models
from tools.edit._upper import cache_below, fused_activations, lowest_edited, skipping_below, stopping_after
from tools.lm._hf import HFLanguageModel


@pytest.fixture(scope="module")
def models() -> dict[str, HFLanguageModel]:
    return load_models()


def test_only_an_mlp_out_of_a_sequential_family_is_cached(models: dict[str, HFLanguageModel]) -> None:
    lm = models["gpt2-world"]
    ids = torch.tensor([[5, 6, 7]])
    mask = torch.ones_like(ids)
    assert cache_below(lm.model, "transformer.h.1", ids, mask) is None  # a block, not an mlp_out
    below = cache_below(lm.model, "transformer.h.1.mlp.c_proj", ids, mask)
    assert below is not None and below.blocks == ("transformer.h.0", "transformer.h.1")
    assert below.residual.shape == (1, 3, 192) and below.keys.shape == (1, 3, 768)


@pytest.mark.parametrize(
    ("name", "path"), [("gpt2-world", "transformer.h.{}.mlp.c_proj"), ("llama-world", "model.layers.{}.mlp.down_proj")]
)
def test_skipping_below_gives_the_full_forward_and_restores_the_blocks(
    name: str, path: str, models: dict[str, HFLanguageModel]
) -> None:
    lm = models[name]
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 1]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    shift = torch.randn(lm.model.config.hidden_size)
    for layer in (0, 2):
        module = lm.model.get_submodule(path.format(layer))
        handle = module.register_forward_hook(lambda _m, _i, out: out + shift)
        try:
            full = lm.model(input_ids=ids, attention_mask=mask).logits
        finally:
            handle.remove()
        modules = [id(m) for m in lm.model.modules()]
        below = cache_below(lm.model, path.format(layer), ids, mask)
        assert below is not None
        with skipping_below(lm.model, below, lambda _x, out: out + shift):
            fast = lm.model(input_ids=ids, attention_mask=mask).logits
        assert torch.equal(full, fast)
        assert [id(m) for m in lm.model.modules()] == modules
        with pytest.raises(RuntimeError), skipping_below(lm.model, below, lambda _x, out: out + shift):
            raise RuntimeError("restored on errors too")
        assert [id(m) for m in lm.model.modules()] == modules


def test_fused_activations_swap_and_restore(models: dict[str, HFLanguageModel]) -> None:
    gpt2, llama = models["gpt2-world"], models["llama-world"]
    ids = torch.tensor([[5, 6, 7, 8]])
    act = gpt2.model.transformer.h[0].mlp.act
    before = gpt2.model(input_ids=ids).logits
    with fused_activations(gpt2.model), fused_activations(llama.model):
        assert isinstance(gpt2.model.transformer.h[0].mlp.act, torch.nn.GELU)
        fused = gpt2.model(input_ids=ids).logits
    assert gpt2.model.transformer.h[0].mlp.act is act
    assert torch.allclose(before, fused, atol=1e-4)  # the same formula, rounded differently


@pytest.mark.parametrize(("model_type", "cached"), [("llama", True), ("gemma2", False), ("olmo2", False)])
def test_a_norm_after_the_mlp_takes_the_full_forward(model_type: str, cached: bool, tiny_tokenizer: Any) -> None:
    """Gemma-2 and OLMo-2 add norm(M), not M: the block's output is checked on the batch, so no cache there."""
    from tests.tools import tiny_archs

    lm = tiny_archs.build(model_type, tiny_tokenizer)
    ids = torch.tensor([[5, 60, 200, 8]])
    below = cache_below(lm.model, "model.layers.1.mlp.down_proj", ids, torch.ones_like(ids))
    assert (below is not None) == cached


def test_lowest_edited_and_stopping_after(models: dict[str, HFLanguageModel]) -> None:
    lm = models["gpt2-world"]
    paths = ["transformer.h.2.mlp.c_proj", "transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"]
    assert lowest_edited(lm.model, paths) == "transformer.h.0.mlp.c_proj"
    assert lowest_edited(lm.model, [*paths, "transformer.h.1"]) is None  # a block is not an mlp_out
    ran: list[str] = []
    handles = [
        lm.model.get_submodule(f"transformer.h.{i}").register_forward_hook(lambda *_a, i=i: ran.append(str(i)))
        for i in range(4)
    ]
    try:
        with stopping_after(lm.model, "transformer.h.1.mlp.c_proj"):
            lm.model(input_ids=torch.tensor([[5, 6, 7]]))
    finally:
        for handle in handles:
            handle.remove()
    assert ran == ["0"]  # block 1 stopped inside, at its MLP; blocks 2-3 and the head never ran
