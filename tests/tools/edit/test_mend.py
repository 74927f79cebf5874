"""MEND: the gradient's rank-one factors, the editor network (identity at init, save/load), training, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import load_models, same, state
from tools.edit import EditRequest, LowRank, WeightDelta, get_editor, journal_for
from tools.edit._ft import _target_nll
from tools.edit._mend import gradient_factors, mend_params
from tools.edit._mend_net import MendNetwork, load_mend, save_mend
from tools.edit._mend_train import MendExample, MendTrainConfig, train_mend
from tools.edit._request import encode_requests
from tools.errors import InvalidEditError

REQS = (
    EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang"),
    EditRequest("Nortel's CEO is", "Nortel", "Jane Roe"),
)


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return load_models()


@pytest.mark.parametrize("name", ["gpt2-world", "llama-world"])
def test_gradient_factors_multiply_to_the_weight_gradient(name: str, models: dict[str, Any]) -> None:
    lm = models[name]
    params, _ = mend_params(lm.model, (3,))
    factors = gradient_factors(lm, REQS, params)
    keys, grads = factors[params[0]]
    weight = dict(lm.model.named_parameters())[params[0]]
    enc = encode_requests(lm.tokenizer, REQS, torch.device("cpu"))
    lm.model.zero_grad()
    logits = lm.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).logits
    _target_nll(logits, enc.labels).sum().backward()
    expected = weight.grad.T if type(lm.model.get_submodule(params[0][:-7])).__name__ == "Conv1D" else weight.grad
    lm.model.zero_grad()
    assert keys.shape[0] == grads.shape[0] == int(enc.attention_mask.sum())
    assert torch.allclose(grads.T @ keys, expected, atol=1e-5, rtol=1e-4)


def test_untrained_network_is_the_normalised_gradient_and_round_trips(tmp_path: Path) -> None:
    net = MendNetwork(("w",), ((3, 5),), rank=4, info={"steps": 0})
    keys, grads = torch.randn(6, 5), torch.randn(6, 3)
    left, right = net.transform("w")(keys, grads)
    assert torch.allclose(right, keys) and torch.allclose(left, -1e-3 * grads.T, atol=1e-7)  # zero-init U2, μ=0, σ=1
    with torch.no_grad():
        net.transform("w").up.weight.normal_()
    loaded = load_mend(save_mend(net, tmp_path / "m.safetensors"))
    assert loaded.params == ("w",) and loaded.shapes == ((3, 5),) and loaded.info == {"steps": 0}
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values(), strict=True))
    with pytest.raises(InvalidEditError, match="no trained editor network"):
        load_mend(tmp_path / "missing.safetensors")


def test_training_leaves_the_model_untouched_and_feeds_the_editor(models: dict[str, Any], tmp_path: Path) -> None:
    lm = models["gpt2-world"]
    before, flags = state(lm), [p.requires_grad for p in lm.model.parameters()]
    examples = [
        MendExample(REQS[0], ("The CEO of Alibaba is",), (("Nortel's CEO is", "Mike Zafirovski"),)),
        MendExample(REQS[1], neighbours=(("Alibaba's CEO is", "Daniel Zhang"),)),
    ]
    seen: list[float] = []
    config = MendTrainConfig(layers=(2, 3), steps=2, batch=2)
    net = train_mend(lm, examples, config, on_step=lambda _step, losses: seen.append(losses["total"]))
    assert len(seen) == 2 and all(torch.isfinite(torch.tensor(seen)))
    assert same(before, state(lm)) and flags == [p.requires_grad for p in lm.model.parameters()]
    path = save_mend(net, tmp_path / "mend.safetensors")
    editor = get_editor("mend", weights=str(path))
    handle = editor.apply(lm, editor.compute(lm, [REQS[0]]))
    assert not same(before, state(lm))
    handle.rollback()
    assert same(before, state(lm))
    with pytest.raises(InvalidEditError, match="edits"):
        get_editor("mend", weights=str(path), layers=(1, 3)).compute(lm, [REQS[0]])
    with pytest.raises(InvalidEditError, match="no trained editor network"):
        get_editor("mend", weights=str(tmp_path / "none.safetensors")).compute(lm, [REQS[0]])
    assert same(before, state(lm)) and not journal_for(lm.model).entries


def test_max_relative_norm_caps_the_update_and_keeps_its_direction(models: dict[str, Any], tmp_path: Path) -> None:
    lm = models["gpt2-world"]
    net = MendNetwork(*mend_params(lm.model, (2, 3)), rank=4)  # untrained: the scaled normalised gradient
    with torch.no_grad():
        for name in net.params:
            net.transform(name).log_lr.fill_(0.0)  # η = 1: a large step, so the cap below binds
    path = str(save_mend(net, tmp_path / "mend.safetensors"))
    loose = get_editor("mend", weights=path, max_steps=1).compute(lm, [REQS[0]])
    tight = get_editor("mend", weights=path, max_steps=1, max_relative_norm=1e-3).compute(lm, [REQS[0]])
    weights = dict(lm.model.named_parameters())
    assert isinstance(loose, WeightDelta) and isinstance(tight, WeightDelta)
    for name in net.params:
        assert loose.info["relative_norm"][name] > 1e-3  # the cap binds
        a, b = loose.updates[name], tight.updates[name]
        assert isinstance(a, LowRank) and isinstance(b, LowRank)
        ratio = float((b.left @ b.right).norm()) / float(weights[name].detach().norm())
        assert ratio == pytest.approx(1e-3, rel=1e-3)
        cos = torch.nn.functional.cosine_similarity((a.left @ a.right).flatten(), (b.left @ b.right).flatten(), dim=0)
        assert float(cos) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(InvalidEditError, match="max_relative_norm"):
        get_editor("mend", weights=path, max_relative_norm=-1.0).compute(lm, [REQS[0]])
