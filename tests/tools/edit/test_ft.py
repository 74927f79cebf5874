"""FT-L and FT-M: side-effect-free compute, effective edits on both reference models, exact rollback, the bound."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.tools.edit._helpers import state as _state
from tools.edit import EditRequest, WeightDelta, family_of, get_editor
from tools.edit._ft import FTHyperParams, _sequence_labels
from tools.edit._request import encode_requests
from tools.errors import InvalidEditError
from tools.lm._hf import HFLanguageModel

MODELS = ["gpt2-world", "llama-world"]
METHODS = ["ft-l", "ft-m"]


@pytest.fixture(scope="module", params=MODELS)
def lm(request: pytest.FixtureRequest) -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / str(request.param), device="cpu")


@pytest.fixture(scope="module")
def requests(lm: HFLanguageModel, bundled_world: Any) -> list[EditRequest]:
    """Two world edits of different subjects that the model answers with the old object before editing."""
    edits = bundled_world.edits[:40]
    gens = lm.generate([e.prompt for e in edits], max_new_tokens=8)
    picked: list[EditRequest] = []
    for e, g in zip(edits, gens, strict=True):
        if g.text.startswith(e.old_object) and all(e.subject != r.subject for r in picked):
            picked.append(EditRequest(e.prompt, e.subject, e.new_object, e.old_object, e.relation))
    assert len(picked) >= 2
    return picked[:2]


def _assert_same(lm: HFLanguageModel, before: dict[str, torch.Tensor]) -> None:
    after = lm.model.state_dict()
    assert set(after) == set(before)
    for name, value in before.items():
        assert torch.equal(after[name], value), name


def _greedy(lm: HFLanguageModel, prompt: str) -> str:
    return lm.generate([prompt], max_new_tokens=12)[0].text


@pytest.mark.parametrize("method", METHODS)
def test_compute_leaves_the_model_bit_identical(lm: HFLanguageModel, requests: list[EditRequest], method: str) -> None:
    before = _state(lm)
    flags = [p.requires_grad for p in lm.model.parameters()]
    training = lm.model.training
    delta = get_editor(method).compute(lm, requests[:1])
    assert isinstance(delta, WeightDelta)
    _assert_same(lm, before)
    assert [p.requires_grad for p in lm.model.parameters()] == flags
    assert lm.model.training == training
    assert delta.info["steps"] >= 1


@pytest.mark.parametrize("method", METHODS)
def test_edit_makes_the_target_the_greedy_output_and_rolls_back(
    lm: HFLanguageModel, requests: list[EditRequest], method: str
) -> None:
    req = requests[0]
    before_state, before_text = _state(lm), _greedy(lm, req.prompt)
    assert before_text.startswith(req.target_old or "")
    editor = get_editor(method)
    handle = editor.apply(lm, editor.compute(lm, [req]))
    try:
        assert _greedy(lm, req.prompt).startswith(req.target_new)
    finally:
        handle.rollback()
    _assert_same(lm, before_state)
    assert _greedy(lm, req.prompt) == before_text


@pytest.mark.parametrize("method", METHODS)
def test_updates_stay_inside_the_norm_constraint(lm: HFLanguageModel, requests: list[EditRequest], method: str) -> None:
    radius = 2e-3
    family = family_of(lm.model)
    editor = get_editor(method, norm_constraint=radius, steps=5)
    delta = editor.compute(lm, requests[:1])
    assert isinstance(delta, WeightDelta)
    expected = {family.mlp_out.format(family.n_layers - 1) + ".weight"}
    assert set(delta.updates) == expected  # default: the last layer's MLP output projection only
    before = _state(lm)
    handle = editor.apply(lm, delta)
    try:
        for name in expected:
            change = lm.model.state_dict()[name] - before[name]
            assert float(change.abs().max()) <= radius + 1e-6
            assert float(change.abs().max()) > 0
    finally:
        handle.rollback()
    _assert_same(lm, before)


def test_batch_of_two_edits_both_take(lm: HFLanguageModel, requests: list[EditRequest]) -> None:
    before = _state(lm)
    editor = get_editor("ft-m")
    handle = editor.apply(lm, editor.compute(lm, requests))
    try:
        for req in requests:
            assert _greedy(lm, req.prompt).startswith(req.target_new)
    finally:
        handle.rollback()
    _assert_same(lm, before)


def test_ft_l_trains_the_prompt_tokens_ft_m_only_the_target(lm: HFLanguageModel, requests: list[EditRequest]) -> None:
    enc = encode_requests(lm.tokenizer, requests, torch.device("cpu"))
    seq = _sequence_labels(enc)
    n_real = enc.attention_mask.sum(1)  # (B,)
    assert ((seq != -100).sum(1) == n_real - 1).all()  # every real next token, prompt included
    target = enc.labels != -100
    assert torch.equal(seq[target], enc.labels[target])  # the target labels agree with FT-M's
    assert bool(((seq != -100) & ~target).any())  # and FT-L has more


def test_hyperparameters_defaults_and_validation(lm: HFLanguageModel) -> None:
    family = family_of(lm.model)
    hp = FTHyperParams.for_family(family)
    assert hp.layers == (family.n_layers - 1,)
    assert hp.norm_constraint > 0 and hp.steps >= 1
    with pytest.raises(InvalidEditError):
        FTHyperParams(layers=(1,), steps=0)
    with pytest.raises(InvalidEditError):
        FTHyperParams(layers=(1,), norm_constraint=0.0)
    with pytest.raises(InvalidEditError):
        get_editor("ft-l", learning_rate=1.0)  # not a field
    with pytest.raises(InvalidEditError):
        get_editor("ft-m", layers=(99,)).compute(lm, [EditRequest("Alibaba's CEO is", "Alibaba", "Jane Roe")])
