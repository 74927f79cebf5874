"""The context adapter: edits kept as demonstrations and prepended to the inputs they concern (IKE, SERAC).

The adapter wraps the causal LM's inner transformer (``model.base_model_prefix``: GPT-2's ``transformer``,
LLaMA's ``model``), so the edited model is still one ``nn.Module`` whose logits, teacher-forced scores and
greedy generations (with its KV cache) every benchmark reads the usual way. For each input row it:

1. retrieves the demonstrations that concern the row, the most similar last, at most ``top_k``:

   * IKE (no ``block``): those whose *trigger* (a token sequence: the edit's subject, with and without a
     leading space) occurs in the row's real tokens, ranked by the cosine between the demonstration's key and
     the row's mean input embedding (both the model's own input embeddings averaged over tokens);
   * SERAC's scope classifier (``block`` set): those whose key (a hidden state at the output of ``block``)
     some position of the row meets with a cosine at or above the demonstration's threshold, ranked by it;
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
    threshold: float = 0.0  # scope "hidden": the cosine a row position must reach


def _contains(row: list[int], pattern: list[int]) -> bool:
    n = len(pattern)
    return n > 0 and any(row[i : i + n] == pattern for i in range(len(row) - n + 1))


class ContextAdapter(EditAdapter):
    """Demonstrations prepended to the rows they concern (see the module docstring).

    Payload of an edit: ``{"tokens": [LongTensor], "triggers": [[LongTensor]], "key": [FloatTensor]}`` (one
    item per demonstration, and optionally ``"threshold": [FloatTensor]``); config: ``{"top_k": int, "pad_id":
    int, "embed": str, "block": str}`` (paths inside the wrapped module: the input embedding, and the block
    of the hidden-state scope, empty for the trigger scope).
    """

    kind: ClassVar[str] = "context"
    # which rows got a prefix is remembered from a generation's first step, so its rows must not change
    # mid-generation (``tools.lm``'s greedy decoding then keeps finished rows, as ``generate`` does)
    keeps_batch_rows: ClassVar[bool] = True

    def __init__(self, base: nn.Module, top_k: int, pad_id: int, embed: str, block: str = "") -> None:
        super().__init__(base)
        self.top_k = top_k
        self.pad_id = pad_id
        self.embed = embed  # path of the input embedding inside ``base``
        self.block = block  # when set (scope "hidden"): the block inside ``base`` whose outputs meet the keys
        self._demos: list[tuple[str, Demonstration]] = []
        self._prefix_mask: torch.Tensor | None = None  # (B, P) of the generation in progress

    @classmethod
    def create(cls, base: nn.Module, config: Mapping[str, Any]) -> ContextAdapter:
        top_k, pad_id, embed = int(config.get("top_k", 1)), int(config.get("pad_id", 0)), str(config.get("embed", ""))
        if top_k < 1:
            raise InvalidEditError(f"context adapter: top_k must be >= 1, got {top_k}")
        adapter = cls(base, top_k, pad_id, embed, str(config.get("block", "")))
        adapter._embedding()  # raises on a wrong path before anything is installed
        if adapter.block:
            adapter._block()
        return adapter

    def add(self, edit_id: str, payload: Mapping[str, Any]) -> None:
        tokens, triggers, keys = payload.get("tokens"), payload.get("triggers"), payload.get("key")
        thresholds = payload.get("threshold", [torch.zeros(())] * len(tokens or []))
        if not isinstance(tokens, list) or not isinstance(triggers, list) or not isinstance(keys, list):
            raise InvalidEditError("context adapter: payload needs lists 'tokens', 'triggers' and 'key'")
        if not tokens or not len(tokens) == len(triggers) == len(keys):
            raise InvalidEditError("context adapter: 'tokens', 'triggers' and 'key' must be non-empty, of one length")
        if not isinstance(thresholds, list) or len(thresholds) != len(tokens):
            raise InvalidEditError("context adapter: 'threshold' must be a list with one item per demonstration")
        width = self._embedding().weight.shape[1]
        demos = []
        for tok, trig, key, thr in zip(tokens, triggers, keys, thresholds, strict=True):
            if not isinstance(tok, torch.Tensor) or tok.dim() != 1 or tok.numel() == 0 or tok.is_floating_point():
                raise InvalidEditError("context adapter: a demonstration's tokens must be a non-empty 1-D id tensor")
            if not isinstance(key, torch.Tensor) or tuple(key.shape) != (width,):
                raise InvalidEditError(f"context adapter: a key must be a ({width},) tensor")
            if not (trig or self.block) or not all(isinstance(t, torch.Tensor) and t.numel() for t in trig):
                raise InvalidEditError("context adapter: without a scope block a demonstration needs a trigger")
            demo = Demonstration(tok.long().cpu(), tuple(t.long().cpu() for t in trig), key.float().cpu(), float(thr))
            demos.append(demo)
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
            tensors[f"{i}.threshold"] = torch.tensor(demo.threshold)
            for j, trig in enumerate(demo.triggers):
                tensors[f"{i}.trigger.{j}"] = trig
            records.append({"owner": owner, "triggers": len(demo.triggers)})
        meta = {"top_k": self.top_k, "pad_id": self.pad_id, "embed": self.embed, "block": self.block}
        return tensors, {**meta, "demos": records}

    @classmethod
    def restore(cls, base: nn.Module, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> ContextAdapter:
        adapter = cls(base, int(meta["top_k"]), int(meta["pad_id"]), str(meta["embed"]), str(meta["block"]))
        for i, rec in enumerate(meta["demos"]):
            triggers = tuple(tensors[f"{i}.trigger.{j}"].long().cpu() for j in range(int(rec["triggers"])))
            key, thr = tensors[f"{i}.key"].float().cpu(), float(tensors[f"{i}.threshold"])
            demo = Demonstration(tensors[f"{i}.tokens"].long().cpu(), triggers, key, thr)
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

    def _block(self) -> nn.Module:
        try:
            return self.base.get_submodule(self.block)
        except AttributeError as exc:
            raise InvalidEditError(f"context adapter: no block at {self.block!r}") from exc

    def block_states(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The scope block's outputs ``(B, T, d)`` on the rows without any prefix (positions over real tokens)."""
        captured: list[torch.Tensor] = []

        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured.append((output[0] if isinstance(output, tuple) else output).detach())

        handle = self._block().register_forward_hook(hook)
        try:
            with torch.no_grad():
                positions = (mask.long().cumsum(-1) - 1).clamp_min(0)
                self.base(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False)
        finally:
            handle.remove()
        return captured[0].float()

    def retrieve_in_scope(self, states: torch.Tensor) -> list[Demonstration]:
        """Scope "hidden": demonstrations whose key some position of ``states`` ``(T, d)`` meets at or above
        their threshold (cosine), least similar first (at most ``top_k``)."""
        scored = []
        for _, demo in self._demos:
            sim = float(torch.nn.functional.cosine_similarity(states, demo.key.to(states)[None], dim=-1).max())
            if sim >= demo.threshold:
                scored.append((sim, demo))
        scored.sort(key=lambda pair: pair[0])
        return [demo for _, demo in scored[-self.top_k :]]

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
        states = self.block_states(input_ids, mask) if self.block else None
        rows = []
        for b, (ids, m) in enumerate(zip(input_ids.tolist(), mask.tolist(), strict=True)):
            if states is not None:
                demos = self.retrieve_in_scope(states[b][mask[b].bool()])
            else:
                demos = self.retrieve([t for t, keep in zip(ids, m, strict=True) if keep])
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
