"""Helpers shared by the editing tests: weight snapshots, bit-for-bit comparison, probe logits."""

from __future__ import annotations

import torch

from tools.lm._hf import HFLanguageModel

PROBE = torch.tensor([[5, 60, 700, 8, 90, 1000, 11]])  # token ids whose logits show any change of the model


def state(lm: HFLanguageModel) -> dict[str, torch.Tensor]:
    """A copy of every weight."""
    return {k: v.detach().clone() for k, v in lm.model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """The two snapshots are bit for bit equal."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def logits(lm: HFLanguageModel) -> torch.Tensor:
    """The model's logits on :data:`PROBE` (adapters included)."""
    with torch.no_grad():
        return lm.model(PROBE).logits.clone()
