"""The context adapter: edits kept as demonstrations and prepended to the inputs they concern (IKE, SERAC).

The adapter wraps the causal LM's inner transformer (``model.base_model_prefix``: GPT-2's ``transformer``,
LLaMA's ``model``), so the edited model is still one ``nn.Module`` whose logits, teacher-forced scores and
greedy generations (with its KV cache) every benchmark reads the usual way. For each input row it:

1. retrieves the demonstrations that concern the row: those whose *trigger* (a token sequence: the edit's
   subject, with and without a leading space) occurs in the row's real tokens; among them the ``top_k`` most
   similar to the row (cosine between the demonstration's key and the row's mean input embedding; both are
   the model's own input embeddings averaged over tokens), the most similar one last;
2. prepends their tokens to the row (left of the row's padding, attention-masked as padding is), runs the
   wrapped module with position ids counted over the real tokens, and returns only the row's positions.

A row no demonstration concerns is passed through untouched, so the model is exactly the unedited one there.
During cached generation the first forward (empty cache) holds the prefix; later steps reuse its mask.

Entries are owned by edit ids; removing an edit drops its demonstrations, so rollback is exact and the wrapped
module's weights are never changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from tools.edit._adapter import EditAdapter
from tools.errors import InvalidEditError

__all__ = ["ContextAdapter", "Demonstration"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Demonstration:
    """One demonstration: its tokens ``(P,)``, trigger token sequences, and retrieval key ``(d,)`` float32."""

    tokens: torch.Tensor
    triggers: tuple[torch.Tensor, ...]
    key: torch.Tensor


def _contains(row: list[int], pattern: list[int]) -> bool:
    n = len(pattern)
    return n > 0 and any(row[i : i + n] == pattern for i in range(len(row) - n + 1))


class ContextAdapter(EditAdapter):
    """Demonstrations prepended to the rows they concern (see the module docstring).

    Payload of an edit: ``{"tokens": [LongTensor], "triggers": [[LongTensor]], "key": [FloatTensor]}`` (one
    item per demonstration); config: ``{"top_k": int, "pad_id": int, "embed": str}`` (``embed``: the input
    embedding's path inside the wrapped module).
    """

    kind: ClassVar[str] = "context"

    def __init__(self, base: nn.Module, top_k: int, pad_id: int, embed: str) -> None:
        super().__init__(base)
        self.top_k = top_k
        self.pad_id = pad_id
        self.embed = embed  # path of the input embedding inside ``base``
        self._demos: list[tuple[str, Demonstration]] = []
        self._prefix_mask: torch.Tensor | None = None  # (B, P) of the generation in progress

    @classmethod
    def create(cls, base: nn.Module, config: Mapping[str, Any]) -> ContextAdapter:
        top_k, pad_id, embed = int(config.get("top_k", 1)), int(config.get("pad_id", 0)), str(config.get("embed", ""))
        if top_k < 1:
            raise InvalidEditError(f"context adapter: top_k must be >= 1, got {top_k}")
        adapter = cls(base, top_k, pad_id, embed)
        adapter._embedding()  # raises on a wrong path before anything is installed
        return adapter

    def add(self, edit_id: str, payload: Mapping[str, Any]) -> None:
        tokens, triggers, keys = payload.get("tokens"), payload.get("triggers"), payload.get("key")
        if not isinstance(tokens, list) or not isinstance(triggers, list) or not isinstance(keys, list):
            raise InvalidEditError("context adapter: payload needs lists 'tokens', 'triggers' and 'key'")
        if not tokens or not len(tokens) == len(triggers) == len(keys):
            raise InvalidEditError("context adapter: 'tokens', 'triggers' and 'key' must be non-empty, of one length")
        width = self._embedding().weight.shape[1]
        demos = []
        for tok, trig, key in zip(tokens, triggers, keys, strict=True):
            if not isinstance(tok, torch.Tensor) or tok.dim() != 1 or tok.numel() == 0 or tok.is_floating_point():
                raise InvalidEditError("context adapter: a demonstration's tokens must be a non-empty 1-D id tensor")
            if not isinstance(key, torch.Tensor) or tuple(key.shape) != (width,):
                raise InvalidEditError(f"context adapter: a key must be a ({width},) tensor")
            if not trig or not all(isinstance(t, torch.Tensor) and t.numel() for t in trig):
                raise InvalidEditError("context adapter: a demonstration needs at least one non-empty trigger")
            demos.append(Demonstration(tok.long().cpu(), tuple(t.long().cpu() for t in trig), key.float().cpu()))
        self._demos.extend((edit_id, d) for d in demos)

    def remove(self, edit_id: str) -> None:
        self._demos = [(owner, d) for owner, d in self._demos if owner != edit_id]

    def edit_ids(self) -> list[str]:
        return list(dict.fromkeys(owner for owner, _ in self._demos))

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        records = []
        for i, (owner, demo) in enumerate(self._demos):
            tensors[f"{i}.tokens"] = demo.tokens
            tensors[f"{i}.key"] = demo.key
            for j, trig in enumerate(demo.triggers):
                tensors[f"{i}.trigger.{j}"] = trig
            records.append({"owner": owner, "triggers": len(demo.triggers)})
        return tensors, {"top_k": self.top_k, "pad_id": self.pad_id, "embed": self.embed, "demos": records}

    @classmethod
    def restore(cls, base: nn.Module, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> ContextAdapter:
        adapter = cls(base, int(meta["top_k"]), int(meta["pad_id"]), str(meta["embed"]))
        for i, rec in enumerate(meta["demos"]):
            triggers = tuple(tensors[f"{i}.trigger.{j}"].long().cpu() for j in range(int(rec["triggers"])))
            demo = Demonstration(tensors[f"{i}.tokens"].long().cpu(), triggers, tensors[f"{i}.key"].float().cpu())
            adapter._demos.append((str(rec["owner"]), demo))
        return adapter

    def _embedding(self) -> nn.Embedding:
        try:
            embed = self.base.get_submodule(self.embed)
        except AttributeError as exc:
            raise InvalidEditError(f"context adapter: no input embedding at {self.embed!r}") from exc
        if not isinstance(embed, nn.Embedding):
            raise InvalidEditError(f"context adapter: {self.embed!r} is not an embedding")
        return embed

    def retrieve(self, row: list[int]) -> list[Demonstration]:
        """The demonstrations prepended to a row of real token ids, least similar first (at most ``top_k``)."""
        hits = [d for _, d in self._demos if any(_contains(row, t.tolist()) for t in d.triggers)]
        if not hits:
            return []
        with torch.no_grad():
            embed = self._embedding()
            mean = embed(torch.tensor(row, device=embed.weight.device)).float().mean(dim=0).cpu()  # (d,)
        sims = [float(torch.nn.functional.cosine_similarity(mean, d.key, dim=0)) for d in hits]
        order = sorted(range(len(hits)), key=lambda i: sims[i])  # ascending: the most similar ends up last
        return [hits[i] for i in order[-self.top_k :]]

    def forward(self, input_ids: torch.Tensor | None = None, **kwargs: Any) -> Any:
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        past = int(cache.get_seq_length()) if cache is not None else 0
        if input_ids is None or not self._demos:
            return self.base(input_ids=input_ids, **kwargs)
        mask = kwargs.get("attention_mask")
        if mask is None:  # no padding: every token so far is real (the cache holds the prefix too)
            held = self._prefix_mask.shape[1] if past and self._prefix_mask is not None else 0
            mask = torch.ones((input_ids.shape[0], past - held + input_ids.shape[1]), dtype=torch.long)
            mask = mask.to(input_ids.device)
        if past == 0:
            prefix_ids, prefix_mask = self._prefixes(input_ids, mask)
            self._prefix_mask = prefix_mask
            if prefix_ids is None:
                return self.base(input_ids=input_ids, **kwargs)
            input_ids = torch.cat([prefix_ids, input_ids], dim=1)
        elif self._prefix_mask is None or self._prefix_mask.shape[0] != input_ids.shape[0]:
            return self.base(input_ids=input_ids, **kwargs)
        assert self._prefix_mask is not None
        full = torch.cat([self._prefix_mask.to(mask), mask], dim=1)  # (B, P + past + q)
        q = input_ids.shape[1]
        positions = (full.long().cumsum(-1) - 1).clamp_min(0)[:, -q:]
        out = self.base(input_ids=input_ids, **{**kwargs, "attention_mask": full, "position_ids": positions})
        if past == 0:
            n = q - self._prefix_mask.shape[1]
            out.last_hidden_state = out.last_hidden_state[:, -n:]
            if getattr(out, "hidden_states", None) is not None:
                out.hidden_states = tuple(h[:, -n:] for h in out.hidden_states)
        return out

    def _prefixes(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Left-padded demonstration tokens ``(B, P)`` and their mask, or ``(None, None)`` when no row has any."""
        rows = []
        for ids, m in zip(input_ids.tolist(), mask.tolist(), strict=True):
            real = [t for t, keep in zip(ids, m, strict=True) if keep]
            demos = self.retrieve(real)
            rows.append([t for d in demos for t in d.tokens.tolist()])
        width = max(len(r) for r in rows)
        if width == 0:
            return None, None
        ids_out = torch.full((len(rows), width), self.pad_id, dtype=input_ids.dtype, device=input_ids.device)
        mask_out = torch.zeros((len(rows), width), dtype=mask.dtype, device=mask.device)
        for b, row in enumerate(rows):
            if row:
                ids_out[b, width - len(row) :] = torch.tensor(row, dtype=input_ids.dtype)
                mask_out[b, width - len(row) :] = 1
        return ids_out, mask_out
