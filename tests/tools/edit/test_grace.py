"""GRACE: codebook rules, edits that take effect, exact rollback, save/load, rejected payloads."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.tools.edit._helpers import known_requests, load_models
from tests.tools.edit._helpers import logits as _logits
from tests.tools.edit._helpers import same as _same
from tests.tools.edit._helpers import state as _state
from tools.edit import AdapterDelta, EditRequest, family_of, get_editor, journal_for, load_edited, save_edited
from tools.edit._grace import GraceAdapter, GraceEditor, GraceHyperParams
from tools.errors import InvalidEditError, LayerOutOfRangeError, NonFiniteUpdateError
from tools.lm._hf import HFLanguageModel

MODELS = ["gpt2-world", "llama-world"]


@pytest.fixture(scope="module")
def models() -> dict[str, HFLanguageModel]:
    return load_models()


@pytest.fixture(scope="module")
def requests_by_model(models: dict[str, HFLanguageModel], bundled_world: Any) -> dict[str, list[EditRequest]]:
    """Five world edits per model, on distinct subjects the model answers with the old object."""
    return {name: known_requests(bundled_world, lm, 80, 5) for name, lm in models.items()}


@pytest.fixture(params=MODELS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lm(models: dict[str, HFLanguageModel], name: str) -> Any:
    model = models[name]
    yield model
    journal_for(model.model).rollback_all()


def _says(lm: HFLanguageModel, req: EditRequest) -> bool:
    return lm.generate([req.prompt], max_new_tokens=16)[0].text.startswith(req.target_new)


def test_compute_leaves_the_model_bit_identical(lm: HFLanguageModel, name: str, requests_by_model: Any) -> None:
    before, logits, training = _state(lm), _logits(lm), lm.model.training
    delta = GraceEditor().compute(lm, requests_by_model[name][:2])
    assert isinstance(delta, AdapterDelta) and delta.adapter == "grace"
    assert delta.payload["keys"].shape[0] == delta.payload["values"].shape[0] == delta.payload["labels"].shape[0]
    assert _same(before, _state(lm)) and torch.equal(logits, _logits(lm))
    assert lm.model.training == training
    assert not any(m._forward_hooks for m in lm.model.modules())


def test_edits_take_effect_and_roll_back_exactly(lm: HFLanguageModel, name: str, requests_by_model: Any) -> None:
    reqs = requests_by_model[name]
    assert len(reqs) == 5
    editor = GraceEditor()
    before, logits = _state(lm), _logits(lm)
    handles = [editor.edit(lm, [r]) for r in reqs]
    assert all(_says(lm, r) for r in reqs)
    handles[2].rollback()  # k = 3 of n = 5
    assert not _says(lm, reqs[2])
    assert all(_says(lm, r) for i, r in enumerate(reqs) if i != 2)
    journal_for(lm.model).rollback_all()
    assert not journal_for(lm.model).adapters(), "the adapter must be uninstalled with its last edit"
    assert _same(before, _state(lm)) and torch.equal(logits, _logits(lm))


def test_a_batch_gives_each_request_its_entries(lm: HFLanguageModel, name: str, requests_by_model: Any) -> None:
    reqs = requests_by_model[name][:2]
    handle = GraceEditor().edit(lm, reqs)
    assert all(_says(lm, r) for r in reqs)
    handle.rollback()
    assert not any(_says(lm, r) for r in reqs)


def test_save_and_load_give_identical_outputs(
    lm: HFLanguageModel, name: str, requests_by_model: Any, tmp_path: Path
) -> None:
    editor = GraceEditor()
    for req in requests_by_model[name][:2]:
        editor.edit(lm, [req])
    loaded = load_edited(save_edited(lm, tmp_path / "edited"), device="cpu")
    assert torch.equal(_logits(lm), _logits(loaded))
    req = requests_by_model[name][0]
    assert loaded.generate([req.prompt])[0].text == lm.generate([req.prompt])[0].text
    journal_for(loaded.model).rollback_all()
    assert not journal_for(loaded.model).adapters()


def test_non_finite_payload_is_rejected_before_anything_changes(
    lm: HFLanguageModel, name: str, requests_by_model: Any
) -> None:
    editor = GraceEditor()
    before, logits = _state(lm), _logits(lm)
    delta = editor.compute(lm, requests_by_model[name][:1])
    assert isinstance(delta, AdapterDelta)
    bad = dataclasses.replace(delta, payload={**delta.payload, "values": delta.payload["values"] * float("nan")})
    with pytest.raises(NonFiniteUpdateError):
        editor.apply(lm, bad)
    adapter = GraceAdapter.create(nn.Linear(4, 3), {"eps_init": 1.0})
    with pytest.raises(NonFiniteUpdateError):  # the adapter checks on its own too
        adapter.add("x", {"keys": torch.full((1, 4), float("inf")), "values": torch.zeros(1, 3), "labels": _ints(1)})
    assert not adapter.edit_ids() and len(adapter) == 0
    assert _same(before, _state(lm)) and torch.equal(logits, _logits(lm))
    assert not journal_for(lm.model).entries


def test_layer_out_of_range(models: dict[str, HFLanguageModel], requests_by_model: Any) -> None:
    lm = models["gpt2-world"]
    with pytest.raises(LayerOutOfRangeError):
        get_editor("grace", layers=(4,)).compute(lm, requests_by_model["gpt2-world"][:1])


def test_family_defaults(models: dict[str, HFLanguageModel]) -> None:
    hp = GraceHyperParams.for_family(family_of(models["gpt2-world"].model))
    assert hp.layers == (3,) and hp.module == "transformer.h.{}.mlp.c_proj" and hp.eps_init > 0


# --- codebook rules on a toy module: keys are points in the plane --------------------------------------------


def _ints(*values: int) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long)


def _toy() -> GraceAdapter:
    base = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(base.weight)
    return GraceAdapter.create(base, {"eps_init": 1.0})


def _add(adapter: GraceAdapter, edit_id: str, point: tuple[float, float], value: float, label: int) -> None:
    adapter.add(edit_id, {"keys": torch.tensor([point]), "values": torch.tensor([[value]]), "labels": _ints(label)})


def _book(adapter: GraceAdapter) -> tuple[list[list[float]], list[float], list[str]]:
    tensors, meta = adapter.export()
    return tensors["book.keys"].tolist(), tensors["book.radii"].tolist(), meta["owners"]


def test_codebook_rules_new_expand_split_supersede() -> None:
    adapter = _toy()
    _add(adapter, "a", (0.0, 0.0), 1.0, label=7)
    _add(adapter, "far", (10.0, 0.0), 2.0, label=7)
    assert adapter.changes("far") == ["new"]
    _add(adapter, "same", (1.5, 0.0), 3.0, label=7)  # within eps_init + radius, same label: expand "a"
    assert adapter.changes("same") == ["expand 0"]
    assert _book(adapter)[1] == [1.5, 1.0]
    _add(adapter, "other", (0.0, 1.0), 4.0, label=8)  # close, another label: split both radii
    assert adapter.changes("other") == ["split 0"]
    assert _book(adapter)[1] == [0.5, 1.0, 0.5]
    x = torch.tensor([[[0.0, 0.1], [0.0, 0.9], [5.0, 5.0]]])
    assert adapter(x).flatten().tolist() == [1.0, 4.0, 0.0]
    _add(adapter, "again", (0.0, 1.0), 5.0, label=9)  # the same input re-edited: the new value wins
    assert adapter.changes("again") == ["supersede 2"]
    assert adapter(x).flatten().tolist() == [1.0, 5.0, 0.0]


def test_remove_restores_the_codebook_the_other_edits_give() -> None:
    adapter, reference = _toy(), _toy()
    edits = [("a", (0.0, 0.0), 1.0, 7), ("b", (1.2, 0.0), 2.0, 8), ("c", (0.0, 1.8), 3.0, 7), ("d", (3.0, 3.0), 4.0, 9)]
    for edit in edits:
        _add(adapter, *edit)
    for edit in edits:
        if edit[0] != "b":
            _add(reference, *edit)
    assert _book(adapter)[1] != _book(reference)[1]  # "b" split the radius of "a"
    adapter.remove("b")
    assert _book(adapter) == _book(reference)
    assert adapter.edit_ids() == ["a", "c", "d"]
    with pytest.raises(InvalidEditError):
        adapter.remove("b")


def test_adapter_rejects_bad_payloads_without_changing() -> None:
    adapter = _toy()
    _add(adapter, "a", (0.0, 0.0), 1.0, label=7)
    with pytest.raises(InvalidEditError):
        adapter.add("b", {"keys": torch.zeros(1, 3), "values": torch.zeros(1, 1), "labels": _ints(1)})
    with pytest.raises(InvalidEditError):
        adapter.add("a", {"keys": torch.zeros(1, 2), "values": torch.zeros(1, 1), "labels": _ints(1)})
    with pytest.raises(InvalidEditError):
        adapter.add("c", {"keys": torch.zeros(1, 2), "values": torch.zeros(1, 1), "labels": torch.zeros(1)})
    assert adapter.edit_ids() == ["a"] and len(adapter) == 1
