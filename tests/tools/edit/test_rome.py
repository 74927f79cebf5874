"""ROME on both reference models: pure compute, effective rank-one edits, exact rollback, typed errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import same as _same
from tests.tools.edit._helpers import state as _state
from tools.edit import EditRequest, LowRank, WeightDelta, family_of, journal_for
from tools.edit._rome import ROMEEditor, ROMEHyperParams
from tools.edit._stats import model_fingerprint
from tools.errors import EditBatchTooLargeError, InvalidEditError, LayerOutOfRangeError
from tools.lm._hf import HFLanguageModel

MODELS = ("gpt2-world", "llama-world")


def _editor(corpus: tuple[str, ...], cache_dir: Path, **hp: Any) -> ROMEEditor:
    return ROMEEditor(corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **hp)


def _says(lm: HFLanguageModel, req: EditRequest, answer: str) -> bool:
    return lm.generate([req.prompt], max_new_tokens=16)[0].text.startswith(answer)


@pytest.mark.parametrize("name", MODELS)
def test_defaults_per_family(name: str, models: dict[str, HFLanguageModel]) -> None:
    family = family_of(models[name].model)
    hp = ROMEHyperParams.for_family(family)
    assert len(hp.layers) == 1 and 0 <= hp.layers[0] < family.n_layers
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.v_lr = 0.1  # type: ignore[misc]


@pytest.mark.parametrize("name", MODELS)
def test_compute_is_pure_and_rank_one(
    name: str, models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path
) -> None:
    lm = models[name]
    before, training = _state(lm), lm.model.training
    flags = [p.requires_grad for p in lm.model.parameters()]
    delta = _editor(corpus, cache_dir).compute(lm, known[name][:1])
    assert _same(before, _state(lm))
    assert lm.model.training == training and [p.requires_grad for p in lm.model.parameters()] == flags
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())
    assert isinstance(delta, WeightDelta) and delta.method == "rome"
    ((param_name, update),) = delta.updates.items()
    family = family_of(lm.model)
    assert param_name == family.mlp_out.format(ROMEHyperParams.for_family(family).layers[0]) + ".weight"
    assert isinstance(update, LowRank) and update.left.shape[1] == 1  # rank one
    assert update.shape == tuple(dict(lm.model.named_parameters())[param_name].shape)
    assert {"layer", "nll", "delta_norm", "stats", "seconds"} <= set(delta.info)


@pytest.mark.parametrize("name", MODELS)
def test_edit_takes_effect_and_rolls_back_bit_identical(
    name: str, models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path
) -> None:
    lm = models[name]
    editor = _editor(corpus, cache_dir)
    before = _state(lm)
    for req in known[name]:
        handle = editor.edit(lm, [req])
        assert _says(lm, req, req.target_new), f"{name}: {req.prompt!r} does not give {req.target_new!r}"
        handle.rollback()
        assert _same(before, _state(lm))
        assert _says(lm, req, req.target_old or "")
    assert len(journal_for(lm.model)) == 0


def test_sequential_edits_keep_the_original_statistics(
    models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path
) -> None:
    lm = models["gpt2-world"]
    editor = _editor(corpus, cache_dir)
    layer = editor.hparams_for(lm).layers[0]
    fingerprint = model_fingerprint(lm.model, layer)
    first = editor.compute(lm, known["gpt2-world"][:1])
    handle = editor.apply(lm, first)
    try:
        assert model_fingerprint(lm.model, layer) == fingerprint
        second = editor.compute(lm, known["gpt2-world"][1:2])
        assert second.info["stats"] in ("memory", "disk")  # found under the unedited model's fingerprint
    finally:
        handle.rollback()


def test_one_request_per_edit(models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path) -> None:
    with pytest.raises(EditBatchTooLargeError, match="batch limit of 1"):
        _editor(corpus, cache_dir).compute(models["gpt2-world"], known["gpt2-world"][:2])


def test_bad_layers(models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path) -> None:
    lm, req = models["llama-world"], known["llama-world"][:1]
    for layers in [(4,), (-1,)]:
        with pytest.raises(LayerOutOfRangeError):
            _editor(corpus, cache_dir, layers=layers).compute(lm, req)
    with pytest.raises(InvalidEditError, match="exactly one layer"):
        _editor(corpus, cache_dir, layers=(0, 1)).compute(lm, req)


def test_missing_corpus(models: dict[str, HFLanguageModel], known: Any, tmp_path: Path) -> None:
    lm = models["gpt2-world"]
    before = _state(lm)
    with pytest.raises(InvalidEditError, match="corpus"):
        ROMEEditor(cache_dir=tmp_path).compute(lm, known["gpt2-world"][:1])
    with pytest.raises(InvalidEditError, match="corpus"):
        ROMEEditor(corpus_name="nothing-cached", cache_dir=tmp_path).compute(lm, known["gpt2-world"][:1])
    assert _same(before, _state(lm))
    # without the covariance adjustment no corpus is needed
    delta = ROMEEditor(mom2_adjustment=False).compute(lm, known["gpt2-world"][:1])
    assert isinstance(delta, WeightDelta) and delta.info["stats"] == "none"


def test_context_templates_sampled_once_per_model_state(
    models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tools.edit._rome as rome_module

    lm, (first, second) = models["gpt2-world"], known["gpt2-world"][:2]
    calls: list[int] = []
    sample = rome_module.context_templates

    def counted(*args: Any, **kwargs: Any) -> tuple[str, ...]:
        calls.append(1)
        return sample(*args, **kwargs)

    monkeypatch.setattr(rome_module, "context_templates", counted)
    cached = _editor(corpus, cache_dir, v_num_grad_steps=2)
    fresh = _editor(corpus, cache_dir, v_num_grad_steps=2, cache_context_templates=False)
    one = cached.compute(lm, [first])
    handle = cached.apply(lm, one)
    cached.compute(lm, [second])  # the edit changed the model: sampled again
    handle.rollback()
    again = cached.compute(lm, [first])  # the unedited model once more: its templates were replaced, sampled again
    cached.compute(lm, [second])  # same state: reused
    assert len(calls) == 3
    uncached = fresh.compute(lm, [first])
    assert len(calls) == 4  # without the cache every edit samples
    assert isinstance(one, WeightDelta) and isinstance(again, WeightDelta) and isinstance(uncached, WeightDelta)
    for name, low_rank in uncached.updates.items():  # cached templates are the same templates: the same update
        assert isinstance(low_rank, LowRank)
        for got in (one.updates[name], again.updates[name]):
            assert isinstance(got, LowRank)
            assert _same({"l": got.left, "r": got.right}, {"l": low_rank.left, "r": low_rank.right})


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs_capped"])
def test_blocks_below_the_edit_run_once_bit_identical(
    name: str,
    exact: bool,
    optimizer: str,
    models: dict[str, HFLanguageModel],
    known: Any,
    corpus: Any,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The value optimisation runs only the blocks above the edited MLP per step (tools.edit._upper), as lean
    modules on packed tokens (tools.edit._lean_upper): the edit is bit-identical to one computed with the model's
    own blocks above and to one with full forwards, and the model's blocks are its own afterwards."""
    from tools.edit import _value_lbfgs, _values

    lm = models[name]
    editor = _editor(corpus, cache_dir, exact_objective=exact, v_optimizer=optimizer)
    blocks = [id(m) for m in lm.model.modules()]
    calls: list[bool] = []
    real = _values.cache_below

    def counted(*args: Any) -> Any:
        below = real(*args)
        calls.append(below is not None)
        return below

    uppers: list[bool] = []
    real_upper = _values.upper_of

    def counted_upper(*args: Any) -> Any:
        upper = real_upper(*args)
        uppers.append(upper is not None)
        return upper

    monkeypatch.setattr(_values, "cache_below", counted)
    monkeypatch.setattr(_value_lbfgs, "cache_below", counted)
    monkeypatch.setattr(_values, "upper_of", counted_upper)
    fast = editor.compute(lm, known[name][:1])
    assert calls == [True]  # the shortcut was taken, once per chunk
    assert uppers == [True]  # the blocks above ran as lean modules on packed tokens (tools.edit._lean_upper)
    hp = {"exact_objective": exact, "v_optimizer": optimizer}
    hooked = _editor(corpus, cache_dir, v_lean_upper=False, **hp).compute(lm, known[name][:1])
    assert calls == [True, True] and uppers == [True]  # cached below, the model's own blocks above
    full = _editor(corpus, cache_dir, v_skip_below=False, **hp).compute(lm, known[name][:1])
    assert calls == [True, True]  # full forwards: nothing cached
    assert [id(m) for m in lm.model.modules()] == blocks
    assert all(p.grad is None for p in lm.model.parameters())  # no weight gradients
    for other in (hooked, full):
        assert isinstance(fast, WeightDelta) and isinstance(other, WeightDelta)
        (key,) = fast.updates
        a, b = fast.updates[key], other.updates[key]
        assert isinstance(a, LowRank) and isinstance(b, LowRank)
        assert torch.equal(a.left, b.left) and torch.equal(a.right, b.right)
        assert fast.info["nll"] == other.info["nll"]
