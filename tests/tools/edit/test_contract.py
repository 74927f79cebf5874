"""The contract every registered editor keeps, on both reference architectures.

compute() leaves the model bit-identical; apply() makes the edit effective and journals it; rolling back all
edits restores weights and outputs bit for bit; rolling back edit k of n keeps the others; a saved edited model
loads with identical outputs; non-finite updates and oversized batches are rejected with the model untouched.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.tools.edit._helpers import logits as _logits
from tests.tools.edit._helpers import same as _same
from tests.tools.edit._helpers import state as _state
from tools.edit import (
    AdapterDelta,
    EditRequest,
    WeightDelta,
    editor_names,
    get_editor,
    journal_for,
    load_edited,
    save_edited,
)
from tools.edit._protocol import BaseEditor
from tools.errors import EditBatchTooLargeError, LayerOutOfRangeError, NonFiniteUpdateError
from tools.lm._hf import HFLanguageModel

MODELS = ["gpt2-world", "llama-world"]
# DINM is a detox method (ten steps on one layer toward a refusal, tests/tools/edit/test_dinm.py): three stacked
# fact edits are not its contract, so only its journal and exact rollback are checked here
DETOX_ONLY = ("dinm",)


@pytest.fixture(scope="module")
def requests_by_model(bundled_world: Any) -> dict[str, list[EditRequest]]:
    """Three world edits each model answers correctly before editing (so an edit visibly changes them)."""
    out = {}
    for name in MODELS:
        lm = HFLanguageModel.load(REPO / "eval" / "world" / "models" / name, device="cpu")
        edits = bundled_world.edits[:60]
        gens = lm.generate([e.prompt for e in edits], max_new_tokens=8)
        chosen = [e for e, g in zip(edits, gens, strict=True) if g.text.startswith(e.old_object)]
        subjects: set[str] = set()
        picked = []
        for e in chosen:
            if e.subject not in subjects and not any(e.subject in s or s in e.subject for s in subjects):
                subjects.add(e.subject)
                picked.append(EditRequest(e.prompt, e.subject, e.new_object, e.old_object, e.relation))
        out[name] = picked[:3]
    return out


@pytest.fixture(params=MODELS)
def model_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lm(model_name: str) -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / model_name, device="cpu")


def _editor(name: str, corpus: tuple[str, ...], cache_dir: Path, **hp: Any) -> Any:
    return get_editor(name, corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **hp)


def _says(lm: HFLanguageModel, req: EditRequest) -> bool:
    return lm.generate([req.prompt], max_new_tokens=16)[0].text.startswith(req.target_new)


def _flags(lm: HFLanguageModel) -> tuple[bool, list[bool]]:
    return lm.model.training, [p.requires_grad for p in lm.model.parameters()]


@pytest.mark.parametrize("method", editor_names())
def test_compute_leaves_the_model_untouched(
    method: str, lm: HFLanguageModel, model_name: str, requests_by_model: Any, corpus: Any, cache_dir: Path
) -> None:
    before, flags, logits = _state(lm), _flags(lm), _logits(lm)
    _editor(method, corpus, cache_dir).compute(lm, requests_by_model[model_name][:1])
    assert _same(before, _state(lm))
    assert _flags(lm) == flags
    assert torch.equal(logits, _logits(lm))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())


# in-context editors whose model does not follow the demonstration on one of the three requests (BASF's CEO ->
# "Benoît Coquart"; the old CEO is Martin Brudermüller). LLaMA copies "Benoît" from the demonstration (p 0.996)
# but then continues with " Pot" (p 0.757 against " Co" 0.229) — "Benoît Potier", Air Liquide's CEO and the only
# "Benoît" it learned; without the demonstration the same split is 0.726 / 0.255, so the context hardly moves the
# second name token. GPT-2 follows it (" Co" 0.966). Measured in issue 29; see tools/edit/_ike.py.
_IN_CONTEXT_MISSES = {("llama-world", "ike"), ("llama-world", "serac")}


@pytest.mark.parametrize("method", editor_names())
def test_apply_rollback_k_of_n_and_rollback_all(
    method: str, lm: HFLanguageModel, model_name: str, requests_by_model: Any, corpus: Any, cache_dir: Path
) -> None:
    if (model_name, method) in _IN_CONTEXT_MISSES:
        pytest.xfail("the model does not follow the in-context demonstration of BASF's new CEO")
    reqs = requests_by_model[model_name]
    editor = _editor(method, corpus, cache_dir)
    before, logits = _state(lm), _logits(lm)
    handles = [editor.apply(lm, editor.compute(lm, [r])) for r in reqs]
    assert [e.id for e in journal_for(lm.model).entries] == [h.edit_id for h in handles]
    if method not in DETOX_ONLY:
        assert all(_says(lm, r) for r in reqs), f"{method}: not every edit took effect"
    handles[1].rollback()
    if method not in DETOX_ONLY:
        assert _says(lm, reqs[0]) and _says(lm, reqs[2]), f"{method}: rolling back edit 2 of 3 lost another edit"
        assert not _says(lm, reqs[1])
    journal_for(lm.model).rollback_all()
    assert _same(before, _state(lm))
    assert torch.equal(logits, _logits(lm))


@pytest.mark.parametrize("method", editor_names())
def test_save_and_load_give_identical_outputs(
    method: str,
    lm: HFLanguageModel,
    model_name: str,
    requests_by_model: Any,
    corpus: Any,
    cache_dir: Path,
    tmp_path: Path,
) -> None:
    editor = _editor(method, corpus, cache_dir)
    for req in requests_by_model[model_name][:2]:
        editor.edit(lm, [req])
    loaded = load_edited(save_edited(lm, tmp_path / "edited"), device="cpu")
    assert torch.equal(_logits(lm), _logits(loaded))
    req = requests_by_model[model_name][0]
    assert loaded.generate([req.prompt])[0].text == lm.generate([req.prompt])[0].text
    assert len(journal_for(loaded.model)) == 2
    journal_for(loaded.model).rollback_all()
    journal_for(lm.model).rollback_all()
    assert _same(_state(lm), _state(loaded))


def _poisoned(value: Any) -> tuple[Any, bool]:
    """``value`` with its first float tensor (searching lists and dicts) set to inf, and whether one was found."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return torch.full_like(value, float("inf")), True
    if isinstance(value, dict):
        out = dict(value)
        for key, item in value.items():
            out[key], done = _poisoned(item)
            if done:
                return out, True
    if isinstance(value, (list, tuple)):
        items = list(value)
        for i, item in enumerate(items):
            items[i], done = _poisoned(item)
            if done:
                return type(value)(items), True
    return value, False


def _poison(delta: Any) -> Any:
    if isinstance(delta, WeightDelta):
        name = next(iter(delta.updates))
        shape = delta.updates[name].shape
        return dataclasses.replace(delta, updates={**delta.updates, name: torch.full(tuple(shape), float("nan"))})
    assert isinstance(delta, AdapterDelta)
    payload, done = _poisoned(dict(delta.payload))
    assert done, f"{delta.method}: no float tensor in the payload to poison"
    return dataclasses.replace(delta, payload=payload)


@pytest.mark.parametrize("method", editor_names())
def test_bad_updates_and_settings_leave_the_model_untouched(
    method: str, lm: HFLanguageModel, model_name: str, requests_by_model: Any, corpus: Any, cache_dir: Path
) -> None:
    editor = _editor(method, corpus, cache_dir)
    req = requests_by_model[model_name][0]
    before, logits = _state(lm), _logits(lm)
    with pytest.raises(NonFiniteUpdateError):
        editor.apply(lm, _poison(editor.compute(lm, [req])))
    with pytest.raises(LayerOutOfRangeError):
        _editor(method, corpus, cache_dir, layers=(99,)).compute(lm, [req])
    assert isinstance(editor, BaseEditor)
    with pytest.raises(EditBatchTooLargeError):
        editor.compute(lm, [req] * (editor.max_batch + 1))
    assert _same(before, _state(lm)) and torch.equal(logits, _logits(lm))
    assert len(journal_for(lm.model)) == 0
