"""TIES merging (Yadav et al., 2023) of weight deltas, as WISE merges its knowledge shards.

Three steps on deltas ``d_1..d_n`` (each from the same original weight):

1. trim: keep each delta's ``density`` fraction of non-zero entries with the largest magnitude, zero the rest;
2. elect: the sign of every entry is the sign of the sum of the trimmed deltas;
3. disjoint mean: every entry is the mean of the trimmed values that agree with the elected sign.

WISE trains each shard under its own random mask, so shards mostly touch disjoint entries and the merge keeps
each shard's values where it alone wrote, averaging only where masks overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["MERGE_MODES", "ties_merge", "trim"]

MERGE_MODES = ("sum", "ties")


def trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """``delta`` with all but its ``density`` fraction of largest-magnitude non-zero entries set to zero."""
    if density >= 1.0:
        return delta
    flat = delta.reshape(-1)
    nonzero = int((flat != 0).sum())
    keep = round(nonzero * max(density, 0.0))
    if keep >= nonzero:
        return delta
    if keep == 0:
        return torch.zeros_like(delta)
    threshold = flat.abs().kthvalue(flat.numel() - keep + 1).values  # the keep-th largest magnitude
    return torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))


def ties_merge(deltas: Sequence[torch.Tensor], density: float, mode: str = "ties") -> torch.Tensor:
    """The TIES merge of ``deltas`` (same shape); the single delta (trimmed) when there is one.

    ``mode="sum"``: the trimmed deltas added (task arithmetic with weight 1, no sign election and no mean), the
    merge that matches deltas each trained on top of the sum of the earlier ones (as WISE's shards are here).
    """
    if not deltas:
        raise ValueError("ties_merge needs at least one delta")
    if mode not in MERGE_MODES:
        raise ValueError(f"ties_merge: mode must be one of {MERGE_MODES}, got {mode!r}")
    trimmed = torch.stack([trim(d, density) for d in deltas])  # (n, *shape)
    if mode == "sum":
        return trimmed.sum(dim=0)
    sign = torch.sign(trimmed.sum(dim=0))  # (*shape,) elected sign, 0 where the sum vanishes
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)  # (n, *shape)
    total = (trimmed * agree).sum(dim=0)
    count = agree.sum(dim=0).clamp(min=1)
    return total / count
