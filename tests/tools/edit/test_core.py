"""The Editor seam's core: requests, families, hooks, the journal's exact rollback, save/load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.tools.edit._helpers import same as _same
from tests.tools.edit._helpers import state as _state
from tools.edit import EditRequest, LowRank, WeightDelta, family_of, get_editor, journal_for, load_edited, save_edited
from tools.edit._delta import low_rank_for
from tools.edit._hooks import Trace, TraceDict
from tools.edit._request import encode_requests, subject_last_token
from tools.errors import (
    InvalidEditError,
    InvalidInputError,
    LayerOutOfRangeError,
    NonFiniteUpdateError,
    NotFoundError,
    UnknownEditorError,
)
from tools.lm._hf import HFLanguageModel

MODELS = ["gpt2-world", "llama-world"]
REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", target_old="Daniel Zhang")


@pytest.fixture(params=MODELS)
def lm(request: pytest.FixtureRequest) -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / request.param, device="cpu")


def _rank_one(lm: HFLanguageModel, layer: int, seed: int) -> WeightDelta:
    fam = family_of(lm.model)
    path = fam.mlp_out.format(layer)
    gen = torch.Generator().manual_seed(seed)
    left = torch.randn(fam.hidden, 1, generator=gen) * 0.01
    right = torch.randn(1, fam.intermediate, generator=gen)
    return WeightDelta("test", (REQ,), {f"{path}.weight": low_rank_for(lm.model.get_submodule(path), left, right)})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": "The CEO of Nokia is", "subject": "Alibaba", "target_new": "X"}, "does not occur"),
        ({"prompt": "Alibaba's CEO is", "subject": "Alibaba", "target_new": "  "}, "target_new"),
        ({"prompt": "", "subject": "Alibaba", "target_new": "X"}, "prompt"),
        ({"prompt": "Alibaba's CEO is", "subject": "Alibaba", "target_new": "X", "target_old": "X"}, "equals"),
    ],
)
def test_bad_requests_are_typed_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidEditError, match=match) as info:
        EditRequest(**kwargs)
    assert isinstance(info.value, InvalidInputError)


def test_request_round_trips_through_json() -> None:
    assert EditRequest.from_json(REQ.to_json()) == REQ


def test_encoding_marks_subject_and_target(lm: HFLanguageModel) -> None:
    enc = encode_requests(lm.tokenizer, [REQ], torch.device("cpu"))
    tokens = lm.tokenizer.convert_ids_to_tokens(enc.input_ids[0])
    assert "ibaba" in tokens[int(enc.subject_last[0])]
    target = [int(t) for t in enc.labels[0] if t != -100]
    assert lm.tokenizer.decode(target).strip() == "Takahiro Hachigō"
    assert int((enc.labels[0] != -100).nonzero()[0]) == int(enc.prompt_last[0])
    stop = int(lm.tokenizer(".", add_special_tokens=False)["input_ids"][0])
    closed = encode_requests(lm.tokenizer, [REQ], torch.device("cpu"), ends=[stop])
    assert [int(t) for t in closed.labels[0] if t != -100] == [*target, stop]  # the end token is one more label
    assert subject_last_token(lm.tokenizer, "The CEO of Alibaba Group is", "Alibaba Group") == int(
        len(lm.tokenizer("The CEO of Alibaba Group", add_special_tokens=False)["input_ids"]) - 1
    )


def test_family_comes_from_config_not_name(lm: HFLanguageModel) -> None:
    fam = family_of(lm.model)
    expected = "gpt2" if lm.model.config.model_type == "gpt2" else "llama"
    assert fam.name == expected and fam.n_layers == 4 and fam.hidden == 192
    lm.model.config.name_or_path = "llama-something" if expected == "gpt2" else "gpt2-something"
    assert family_of(lm.model).name == expected
    lm.model.get_submodule(fam.mlp_out.format(3))
    with pytest.raises(LayerOutOfRangeError):
        fam.path(fam.mlp_out, 4)


def test_trace_always_detaches(lm: HFLanguageModel) -> None:
    fam = family_of(lm.model)
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(RuntimeError), Trace(lm.model, fam.mlp_out.format(1), retain_input=True):
        raise RuntimeError("boom")
    with TraceDict(lm.model, [fam.mlp_out.format(i) for i in range(2)], retain_output=True) as traces:
        lm.model(ids)
    assert all(t.output is not None and t.output.shape == (1, 3, fam.hidden) for t in traces.values())
    assert not any(m._forward_hooks for m in lm.model.modules())


def test_journal_rollback_all_is_bit_identical(lm: HFLanguageModel) -> None:
    before = _state(lm)
    journal = journal_for(lm.model)
    handles = [journal.apply(_rank_one(lm, layer, seed)) for seed, layer in enumerate([1, 1, 2, 1])]
    assert not _same(before, _state(lm))
    assert [e.id for e in journal.entries] == [h.edit_id for h in handles]
    journal.rollback_all()
    assert _same(before, _state(lm)) and len(journal) == 0 and not journal.originals


def test_rollback_of_one_edit_equals_applying_the_others(lm: HFLanguageModel) -> None:
    deltas = [_rank_one(lm, layer, seed) for seed, layer in enumerate([1, 2, 1])]
    journal = journal_for(lm.model)
    handles = [journal.apply(d) for d in deltas]
    handles[1].rollback()
    after_rollback = _state(lm)
    journal.rollback_all()
    for d in (deltas[0], deltas[2]):
        journal.apply(d)
    assert _same(after_rollback, _state(lm))
    with pytest.raises(NotFoundError):
        journal.rollback(handles[1].edit_id)
    journal.rollback_all()


def test_non_finite_or_misshapen_updates_change_nothing(lm: HFLanguageModel) -> None:
    before = _state(lm)
    good = _rank_one(lm, 1, 0)
    name = next(iter(good.updates))
    shape = good.updates[name].shape
    bad_nan = WeightDelta("test", (REQ,), {name: torch.full(shape, float("nan"))})
    inf_left = torch.full((shape[0], 1), float("inf"))
    bad_inf = WeightDelta("test", (REQ,), {name: LowRank(inf_left, torch.ones(1, shape[1]))})
    bad_shape = WeightDelta("test", (REQ,), {name: torch.zeros(3, 3)})
    bad_name = WeightDelta("test", (REQ,), {"nope.weight": torch.zeros(3, 3)})
    journal = journal_for(lm.model)
    for delta, error in [
        (bad_nan, NonFiniteUpdateError),
        (bad_inf, NonFiniteUpdateError),
        (bad_shape, InvalidEditError),
        (bad_name, InvalidEditError),
    ]:
        with pytest.raises(error):
            journal.apply(delta)
    assert _same(before, _state(lm)) and len(journal) == 0


def test_save_and_load_keep_weights_outputs_and_journal(lm: HFLanguageModel, tmp_path: Path) -> None:
    journal = journal_for(lm.model)
    original = _state(lm)
    journal.apply(_rank_one(lm, 1, 0))
    second = journal.apply(_rank_one(lm, 2, 1))
    out = save_edited(lm, tmp_path / "edited")
    loaded = load_edited(out, device="cpu")
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.equal(lm.model(ids).logits, loaded.model(ids).logits)
    loaded_journal = journal_for(loaded.model)
    assert [e.id for e in loaded_journal.entries] == [e.id for e in journal.entries]
    loaded_journal.rollback(second.edit_id)
    journal.rollback(second.edit_id)
    assert _same(_state(lm), _state(loaded))
    loaded_journal.rollback_all()
    assert _same(original, _state(loaded))
    journal.rollback_all()


def test_unknown_method_and_hyperparameter() -> None:
    with pytest.raises(UnknownEditorError, match="rome"):
        get_editor("nonsense")
    with pytest.raises(InvalidEditError, match="unknown hyperparameter"):
        get_editor("rome", not_a_field=1)
