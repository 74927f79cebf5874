"""DINM's change behind an activation gate: the edited layer answers as tuned only for inputs it recognises.

DINM (:mod:`tools.edit._dinm`) tunes the toxic layer's FFN output weights densely, and the change reaches every
input read through that layer: the world's facts too (issue 19: 3-10 points of known accuracy). With
``gate`` set, the tuned change ``D`` ``(out, in)`` is kept beside the layer, as WISE keeps its side memory
(:mod:`tools.edit._wise`), and a router adds ``a @ Dᵀ`` only where WISE's scale-free activation score
``s(a) = ||a @ Dᵀ|| / ||a||`` (``a`` the layer's FFN key, the output projection's input) says the input is
the kind the change was trained for:

* a call with several positions (a prompt's prefill, a teacher-forced sequence) is one decision per row: the
  change applies at every position of a row if the mean of the row's ``top_k`` highest scores is above the
  edit's ``threshold`` (DINM tunes the change on the whole adversarial input, so the attack template's first
  positions need it too: a causal latch, on from the first position above the threshold, derailed 3 of 9 dev
  refusals; and a row's mean of its top 3 separates harmful inputs from world text better than its single
  highest position, see the README);
* a call with one position (a decoding step) continues its row: a row opened by its prefill stays open for the
  rest of its generation (the adapter remembers the rows' decisions, so it declares ``keeps_batch_rows``, as
  IKE's and SERAC's context adapters do, and the project's decoder keeps a generation's rows in place rather
  than drop the finished ones); a row its prefill left closed opens a step only when the step's own score is
  above ``decode_threshold``. Installed (:meth:`DetoxGateAdapter.attach`), the adapter tells the two kinds of
  call apart by the model call's attention mask: a call whose mask is as long as its positions starts new rows
  (a prefill, also of a one-token prompt), a longer mask continues a cache. Without a mask, a call with one
  position is taken for a decoding step of the last multi-position call's rows when the batch sizes agree.
  (A first router without the memory, one decision per decoding step, left the refusals' own tokens under the
  threshold often enough to garble them: README, "An activation gate".)

The editor sets ``threshold`` to ``gate`` times the highest row statistic over the calibration texts (the preserved
world texts, or the KL inputs) and ``decode_threshold`` to ``gate x decode_ratio`` times their highest single
position: benign text at the thresholds' level. A row's statistic counts its tokens only: installed, the adapter
reads each call's attention mask off the model (:meth:`DetoxGateAdapter.attach`), since the keys of a left-padded
batch's padding score high. Scores do not depend on the change being applied (the key is read before the output
projection), so the decision is the same whatever the other positions got.

Payload of one edit: ``delta`` ``(out, in)`` float, ``threshold`` and ``decode_threshold`` (floats). Config:
``top_k``.
Several edits at one layer each route on their own and add up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from tools.edit._adapter import EditAdapter
from tools.edit._delta import check_finite
from tools.edit._family import linear_weight
from tools.errors import InvalidEditError

__all__ = ["DetoxGateAdapter", "gate_scores", "row_statistic"]


def gate_scores(keys: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The change's output ``keys @ deltaᵀ`` and the scale-free score per position (``keys`` ``(..., in)``)."""
    side = keys.float() @ delta.T
    return side, side.norm(dim=-1) / keys.float().norm(dim=-1).clamp_min(1e-6)


def row_statistic(score: torch.Tensor, mask: torch.Tensor, top_k: int) -> torch.Tensor:
    """Per row of ``score`` ``(B, T)``, the mean of its ``top_k`` highest scores among the ``mask``ed positions
    (all of them in a row with fewer): ``(B,)``."""
    k = min(top_k, score.shape[1])
    masked = score.masked_fill(~mask, float("-inf"))
    top = masked.topk(k, dim=1).values  # (B, k)
    counted = torch.isfinite(top)
    return torch.where(counted, top, 0.0).sum(1) / counted.sum(1).clamp_min(1)


class DetoxGateAdapter(EditAdapter):
    """Gated DINM changes around one FFN output projection (``kind = "dinm-gate"``; module docstring)."""

    kind: ClassVar[str] = "dinm-gate"
    # the rows' prefill decisions are remembered for their decoding steps, so a generation's rows must stay put
    keeps_batch_rows: ClassVar[bool] = True

    def __init__(self, base: nn.Module, top_k: int) -> None:
        super().__init__(base)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise InvalidEditError(f"dinm-gate: top_k must be an int >= 1, got {top_k!r}")
        self.top_k = top_k
        weight = linear_weight(base)
        self._shape = (int(weight.shape[0]), int(weight.shape[1]))
        self._device = weight.device
        self._edits: dict[str, tuple[torch.Tensor, float, float]] = {}
        self._rows: dict[str, torch.Tensor] = {}  # per edit: the last prefill's decision per row, (B,) bool
        self._mask: torch.Tensor | None = None  # the model call's attention mask (attach), (B, T)
        self._hook: Any = None

    @classmethod
    def create(cls, base: nn.Module, config: Mapping[str, Any]) -> DetoxGateAdapter:
        """An empty gate around ``base``."""
        return cls(base, config.get("top_k", 3))

    def attach(self, model: nn.Module) -> None:
        """Read each call's attention mask off ``model``, so a padded row's statistic counts its tokens only (in
        a left-padded batch the padding's keys score high enough to open world questions' rows: 92 of 98 dev
        probes on LLaMA after a stronger edit, against 1 of 98 asked one at a time)."""
        self.detach()
        self._hook = model.register_forward_pre_hook(self._capture, with_kwargs=True)

    def detach(self) -> None:
        """Stop reading the model's attention mask."""
        if self._hook is not None:
            self._hook.remove()
        self._hook, self._mask = None, None

    def _capture(self, _model: nn.Module, _args: Any, kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        self._mask = mask if isinstance(mask, torch.Tensor) else None

    def add(self, edit_id: str, payload: Mapping[str, Any]) -> None:
        """Add one edit's change and threshold (validated first: on error nothing changes).

        Raises:
            InvalidEditError: the id is held already, or the payload does not fit the module.
            NonFiniteUpdateError: the change or the threshold is not finite.
        """
        if edit_id in self._edits:
            raise InvalidEditError(f"dinm-gate: edit {edit_id!r} is already held")
        delta = payload.get("delta")
        if not isinstance(delta, torch.Tensor) or tuple(delta.shape) != self._shape:
            shape = tuple(delta.shape) if isinstance(delta, torch.Tensor) else type(delta).__name__
            raise InvalidEditError(f"dinm-gate: delta must be {self._shape}, got {shape}")
        thresholds: list[Any] = [payload.get("threshold"), payload.get("decode_threshold")]
        for value in thresholds:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InvalidEditError(f"dinm-gate: threshold and decode_threshold must be numbers, got {value!r}")
            check_finite("dinm-gate threshold", torch.tensor(float(value)))
        check_finite("dinm-gate delta", delta)
        row, step = (float(v) for v in thresholds)
        self._edits[edit_id] = (delta.detach().to(self._device, torch.float32), row, step)

    def remove(self, edit_id: str) -> None:
        """Drop one edit; the others stay effective.

        Raises:
            InvalidEditError: no such edit.
        """
        if edit_id not in self._edits:
            raise InvalidEditError(f"dinm-gate: no edit {edit_id!r}")
        del self._edits[edit_id]
        self._rows.pop(edit_id, None)

    def edit_ids(self) -> list[str]:
        """Ids of the edits held, oldest first."""
        return list(self._edits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The module's output, plus each edit's change where its gate is open."""
        out = self.base(x)
        if not self._edits:
            return out
        seq = x if x.dim() == 3 else x.reshape(1, -1, x.shape[-1])  # (B, T, in)
        extra = torch.zeros(*seq.shape[:2], self._shape[0], device=seq.device)  # (B, T, out)
        mask = self._mask
        fresh = seq.shape[1] > 1  # without the model's mask: several positions are a prefill
        tokens = torch.ones(seq.shape[:2], dtype=torch.bool, device=seq.device)
        if mask is not None and mask.dim() == 2 and mask.shape[0] == seq.shape[0]:
            fresh = mask.shape[1] == seq.shape[1]  # no cached positions before these: new rows
            if fresh:
                tokens = mask.to(device=seq.device, dtype=torch.bool)  # a prefill: its padding does not count
        for edit_id, (delta, row, step) in self._edits.items():
            side, score = gate_scores(seq, delta)  # (B, T, out), (B, T)
            if fresh:  # one decision per row: the mean of its top_k scores, kept for its decoding
                opened = row_statistic(score, tokens, self.top_k) > row
                self._rows[edit_id] = opened
                open_ = opened[:, None].expand_as(score)
            else:  # a decoding step (or a cached continuation): open if its row was opened, else on its own score
                open_ = score > step
                kept = self._rows.get(edit_id)
                if kept is not None and kept.shape[0] == seq.shape[0]:
                    open_ = open_ | kept[:, None]
            extra = extra + side * open_.unsqueeze(-1)
        return out + extra.reshape(out.shape).to(out.dtype)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Each edit's change (tensors) and thresholds with the config (metadata)."""
        tensors = {f"edit{i}.delta": edit[0] for i, edit in enumerate(self._edits.values())}
        meta = {
            "config": {"top_k": self.top_k},
            "edits": [
                {"id": edit_id, "threshold": row, "decode_threshold": step}
                for edit_id, (_, row, step) in self._edits.items()
            ],
        }
        return tensors, meta

    @classmethod
    def restore(cls, base: nn.Module, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> DetoxGateAdapter:
        """Inverse of :meth:`export`."""
        adapter = cls.create(base, meta["config"])
        for i, edit in enumerate(meta["edits"]):
            adapter.add(
                edit["id"], {"delta": tensors[f"edit{i}.delta"], **{k: v for k, v in edit.items() if k != "id"}}
            )
        return adapter
