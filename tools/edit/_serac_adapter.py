"""The counterfactual adapter: SERAC's edit memory and scope classifier, with in-scope rows answered by a
separately trained counterfactual model (:mod:`tools.edit._serac_cf`).

Like the context adapter it subclasses (same edit memory, same hidden-state scope classifier, same export), it
wraps the causal LM's inner transformer. Every row always runs through the wrapped module, with the caller's
arguments and KV cache untouched, so out-of-scope rows are exactly the unedited model. For a row the classifier
puts in some edit's scope (decided on the first forward of a generation, kept for its later steps), the
returned hidden states at the row's real positions are replaced by the counterfactual model's, computed on the
most similar in-scope edit's tokens followed by every real token of the row so far (recomputed without a cache
at each generation step: the counterfactual model is small and the rows short). The base model's output head
then turns them into logits.

Payload of an edit: the context adapter's (``"tokens"``, ``"key"``, ``"threshold"``, empty ``"triggers"``)
plus ``"counterfactual": True``, so another method's demonstrations cannot be added to it; config: the
context adapter's plus ``"weights"`` (the counterfactual model's file) and ``top_k`` 1 (the paper conditions
on the one edit with the highest scope score).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from tools.edit._context import ContextAdapter, Demonstration
from tools.edit._serac_cf import CounterfactualModel, load_counterfactual
from tools.errors import InvalidEditError

__all__ = ["CounterfactualAdapter"]
logger = logging.getLogger(__name__)


class CounterfactualAdapter(ContextAdapter):
    """Scope classifier over an edit memory; in-scope rows answered by the counterfactual model (module docstring)."""

    kind: ClassVar[str] = "counterfactual"

    def __init__(self, base: nn.Module, top_k: int, pad_id: int, embed: str, block: str = "") -> None:
        super().__init__(base, top_k, pad_id, embed, block)
        self.weights = ""  # the counterfactual model's file
        # kept out of the module tree: its parameters are not the model's (state dicts, weight checks, .to())
        self._cf: tuple[CounterfactualModel, ...] = ()
        self._rows: list[tuple[Demonstration | None, list[int]]] | None = None  # generation in progress

    @classmethod
    def create(cls, base: nn.Module, config: Mapping[str, Any]) -> CounterfactualAdapter:
        if not config.get("block"):
            raise InvalidEditError("counterfactual adapter: needs a scope block")
        adapter = super().create(base, config)
        assert isinstance(adapter, CounterfactualAdapter)
        adapter._attach(str(config.get("weights", "")))
        return adapter

    def _attach(self, weights: str) -> None:
        if not weights:
            raise InvalidEditError("counterfactual adapter: config needs 'weights' (the counterfactual model's file)")
        self.weights = weights
        self._cf = (load_counterfactual(self.base, Path(weights)),)

    def add(self, edit_id: str, payload: Mapping[str, Any]) -> None:
        if payload.get("counterfactual") is not True:
            raise InvalidEditError("counterfactual adapter: this module holds SERAC's edit memory, not this kind")
        super().add(edit_id, payload)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, meta = super().export()
        return tensors, {**meta, "weights": self.weights}

    @classmethod
    def restore(
        cls, base: nn.Module, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
    ) -> CounterfactualAdapter:
        adapter = super().restore(base, tensors, meta)
        assert isinstance(adapter, CounterfactualAdapter)
        adapter._attach(str(meta.get("weights", "")))
        return adapter

    def forward(self, input_ids: torch.Tensor | None = None, **kwargs: Any) -> Any:
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        past = int(cache.get_seq_length()) if cache is not None else 0
        out = self.base(input_ids=input_ids, **kwargs)
        if input_ids is None or not self._demos or not self._cf:
            self._rows = None
            return out
        q = input_ids.shape[1]
        mask = kwargs.get("attention_mask")
        if mask is None:  # no padding: every token so far is real
            mask = torch.ones((input_ids.shape[0], past + q), dtype=torch.long, device=input_ids.device)
        current = mask[:, -q:].bool()  # (B, q): the real tokens of this call
        if past == 0:
            states = self.block_states(input_ids, mask[:, -q:])
            self._rows = []
            for b in range(input_ids.shape[0]):
                demos = self.retrieve_in_scope(states[b][current[b]])
                self._rows.append((demos[-1] if demos else None, input_ids[b][current[b]].tolist()))
        elif self._rows is None or len(self._rows) != input_ids.shape[0]:
            return out
        else:
            for b, (_, row) in enumerate(self._rows):
                row.extend(input_ids[b][current[b]].tolist())
        hits = [b for b, (demo, _) in enumerate(self._rows) if demo is not None]
        if hits:
            out.last_hidden_state = self._answer(out.last_hidden_state, current, hits)
        return out

    def _answer(self, hidden: torch.Tensor, current: torch.Tensor, hits: list[int]) -> torch.Tensor:
        """``hidden`` ``(B, q, d)`` with the rows ``hits``' real positions replaced by the counterfactual's."""
        assert self._rows is not None
        cf = self._cf[0]
        seqs = []
        for b in hits:
            demo, row = self._rows[b]
            assert demo is not None
            seqs.append(demo.tokens.tolist() + row)
        width = max(len(s) for s in seqs)
        device = hidden.device
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long, device=device)
        mask = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
        for i, seq in enumerate(seqs):  # right-padded: the row's last tokens end at len(seq)
            ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, : len(seq)] = 1
        with torch.no_grad():
            states = cf.hidden(ids, mask)  # (H, width, d)
        hidden = hidden.clone()
        for i, b in enumerate(hits):
            n = int(current[b].sum())
            if n:
                hidden[b, current[b]] = states[i, len(seqs[i]) - n : len(seqs[i])].to(hidden.dtype)
        return hidden
