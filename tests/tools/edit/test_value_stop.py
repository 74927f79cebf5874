"""The value fit's per-value stop (issues 18/29): a stopped value's rows leave the steps, exactly those rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.tools.edit._helpers import known_requests
from tools.edit import EditRequest, WeightDelta
from tools.edit._keys import _base_and_head
from tools.edit._memit import MEMITEditor
from tools.edit._upper import cache_below
from tools.edit._values import _chunk, _chunk_nll, _view
from tools.lm._hf import HFLanguageModel

REQUESTS = (
    EditRequest("Digna Baltus was born in", "Digna Baltus", "Paris", "Rome"),
    EditRequest("The CEO of Alibaba is", "Alibaba", "Takahiro Hachigo", "Daniel Zhang"),
    EditRequest("Toyota is led by", "Toyota", "Tim Cook", "Akio Toyoda"),
)


@pytest.fixture(scope="module")
def lm() -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")


def test_a_view_is_the_chunks_rows_of_the_kept_requests(lm: HFLanguageModel) -> None:
    templates = ("{}", "Q: {}\nA:")
    chunk = _chunk(lm, REQUESTS, range(3), templates, False)
    path = "transformer.h.0.mlp.c_proj"
    below = cache_below(lm.model, path, chunk.batch.input_ids, chunk.batch.attention_mask)
    assert below is not None
    response = torch.randn(*chunk.batch.input_ids.shape, 3)
    keep = torch.tensor([True, False, True])
    view = _view(chunk, keep, below, response)
    assert view.chunk.requests.tolist() == [0, 2]
    assert view.chunk.owners.tolist() == [0, 0, 2, 2, 0, 2]  # templated rows, then the KL rows
    rows = [0, 1, 4, 5, 6, 8]
    assert torch.equal(view.chunk.batch.input_ids, chunk.batch.input_ids[rows])
    assert view.response is not None and torch.equal(view.response, response[rows])
    again = cache_below(lm.model, path, view.chunk.batch.input_ids, view.chunk.batch.attention_mask)
    assert again is not None and view.below is not None
    assert torch.allclose(view.below.keys, again.keys, atol=1e-5)
    assert torch.allclose(view.below.residual, again.residual, atol=1e-5)
    base, head = _base_and_head(lm.model)
    with torch.no_grad():
        ids, mask = chunk.batch.input_ids, chunk.batch.attention_mask
        hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
        nll, kl = _chunk_nll(chunk, head, hidden[chunk.pick_rows, chunk.pick_pos])
        ids, mask = view.chunk.batch.input_ids, view.chunk.batch.attention_mask
        hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
        part_nll, part_kl = _chunk_nll(view.chunk, head, hidden[view.chunk.pick_rows, view.chunk.pick_pos])
    assert torch.allclose(part_nll, nll[keep], atol=1e-4)
    assert torch.allclose(part_kl, kl[keep], atol=1e-4)
    assert _view(chunk, torch.ones(3, dtype=torch.bool), below, response).chunk is chunk  # all kept: the chunk


def test_each_value_stops_on_its_own(bundled_world: Any, lm: HFLanguageModel, corpus: Any, cache_dir: Path) -> None:
    """Per-value stop: fewer rows forwarded than steps times the batch's rows, every value stopped at the end
    (the last evaluation covers all rows); the joint fit forwards every row at every step."""
    reqs = known_requests(bundled_world, lm, 80, 5, by_prompt=True)
    infos = {}
    for joint in (False, True):
        editor = MEMITEditor(corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, v_joint_fit=joint)
        delta = editor.compute(lm, reqs)
        assert isinstance(delta, WeightDelta)
        infos[joint] = delta.info
    joint_info, own = infos[True], infos[False]
    per_step = joint_info["rows_run"] // (joint_info["value_steps"] + 1)  # every row, at every evaluation
    assert joint_info["rows_run"] == per_step * (joint_info["value_steps"] + 1)
    assert len(set(own["stop_steps"])) > 1  # the values stop at different steps (else nothing to save)
    assert own["rows_run"] < per_step * (own["value_steps"] + 1)
    assert all(s >= 0 for s in own["settled_steps"]) and own["value_steps"] < 250  # all stopped, before the cap
    assert own["nll_mean"] < 0.05
