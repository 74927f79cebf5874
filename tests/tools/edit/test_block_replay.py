"""``Replay``: the blocks below an edited layer run once and are replayed; the loop's losses and gradients are
the same as with every block run, and WISE's target loss uses it."""

from __future__ import annotations

import pytest
import torch

from tests.tools.edit._helpers import load_models
from tools.edit import family_of
from tools.edit._hooks import Replay, Trace
from tools.lm._hf import HFLanguageModel


@pytest.fixture(scope="module")
def models() -> dict[str, HFLanguageModel]:
    return load_models()


def _loss(lm: HFLanguageModel, ids: torch.Tensor, path: str, change: torch.Tensor) -> torch.Tensor:
    def add(out: torch.Tensor, _path: str) -> torch.Tensor:
        return out + change

    with Trace(lm.model, path, edit_output=add):
        logits = lm.model(input_ids=ids, use_cache=False).logits
    return torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:])


@pytest.mark.parametrize("name", ["gpt2-world", "llama-world"])
def test_replayed_blocks_give_the_same_loss_and_gradient_without_running(
    models: dict[str, HFLanguageModel], name: str
) -> None:
    lm = models[name]
    fam = family_of(lm.model)
    layer = fam.n_layers // 2
    path = fam.mlp_out.format(layer)
    ids = lm.tokenizer("Alibaba's CEO is Takahiro Hachigō.", return_tensors="pt")["input_ids"]
    torch.manual_seed(0)
    direct = torch.randn(fam.hidden, requires_grad=True)
    expected = _loss(lm, ids, path, direct)
    expected.backward()

    replay = Replay(lm.model, [fam.block.format(i) for i in range(layer)])
    replay.record(lambda: lm.model(input_ids=ids, use_cache=False))
    runs: list[int] = []
    lower = lm.model.get_submodule(fam.attn_out.format(0))  # inside the lowest block
    handle = lower.register_forward_hook(lambda *_: runs.append(1))
    replayed = direct.detach().clone().requires_grad_(True)
    try:
        with replay.active():
            got = _loss(lm, ids, path, replayed)
            got.backward()
    finally:
        handle.remove()
    assert not runs  # the lowest block did not run
    assert torch.equal(got.detach(), expected.detach())
    assert replayed.grad is not None and direct.grad is not None and torch.allclose(replayed.grad, direct.grad)
    assert "forward" not in lm.model.get_submodule(fam.block.format(0)).__dict__  # restored on exit
    assert torch.equal(_loss(lm, ids, path, direct.detach()), expected.detach())  # blocks run again outside
