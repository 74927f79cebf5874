"""The journal's replay: rolling back edit k recomputes later replayable edits on the model without it, atomically."""

from __future__ import annotations

import pytest
import torch

from tests.tools.edit._helpers import load_models, same, state
from tools.edit import EditRequest, LowRank, WeightDelta, family_of, journal_for
from tools.edit._delta import low_rank_for
from tools.errors import NonFiniteUpdateError
from tools.lm._hf import HFLanguageModel

REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō")


@pytest.fixture(scope="module")
def lm() -> HFLanguageModel:
    return load_models()["gpt2-world"]


def _delta(lm: HFLanguageModel, seed: int, scale: float = 0.01) -> WeightDelta:
    fam = family_of(lm.model)
    path = fam.mlp_out.format(1)
    gen = torch.Generator().manual_seed(seed)
    left, right = torch.randn(fam.hidden, 1, generator=gen) * scale, torch.randn(1, fam.intermediate, generator=gen)
    return WeightDelta("test", (REQ,), {f"{path}.weight": low_rank_for(lm.model.get_submodule(path), left, right)})


def test_rollback_replays_later_edits_in_order_under_their_ids(lm: HFLanguageModel) -> None:
    before = state(lm)
    journal = journal_for(lm.model)
    calls: list[str] = []

    def recompute() -> WeightDelta:
        calls.append("third")  # a "fitted on the current model" delta: here a fixed new one
        return _delta(lm, 7)

    first = journal.apply(_delta(lm, 0))
    second = journal.apply(_delta(lm, 1))
    third = journal.apply(_delta(lm, 2), recompute=recompute)
    second.rollback()
    assert calls == ["third"]
    assert [e.id for e in journal.entries] == [first.edit_id, third.edit_id]
    replayed = journal.entry(third.edit_id).updates
    assert isinstance(next(iter(replayed.values())), LowRank)
    assert journal.entry(third.edit_id).recompute is recompute
    after = state(lm)
    journal.rollback_all()
    assert same(before, state(lm)) and not journal.originals
    journal.apply(_delta(lm, 0))
    journal.apply(_delta(lm, 7))
    assert same(after, state(lm))  # = the original plus edit 1 plus the recomputed edit 3
    journal.rollback_all()


def test_a_failed_replay_puts_everything_back(lm: HFLanguageModel) -> None:
    before = state(lm)
    journal = journal_for(lm.model)

    def broken() -> WeightDelta:
        return _delta(lm, 3, scale=float("nan"))  # rejected by validation while replaying

    handles = [journal.apply(_delta(lm, 0)), journal.apply(_delta(lm, 1))]
    handles.append(journal.apply(_delta(lm, 2), recompute=broken))
    applied, entries, originals = state(lm), journal.entries, dict(journal.originals)
    with pytest.raises(NonFiniteUpdateError):
        handles[1].rollback()
    assert same(applied, state(lm))
    assert [e.id for e in journal.entries] == [e.id for e in entries]
    assert journal.originals.keys() == originals.keys()
    assert all(torch.equal(journal.originals[k], originals[k]) for k in originals)
    journal.rollback_all()
    assert same(before, state(lm))
