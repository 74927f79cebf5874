"""LLaMA (``LlamaForCausalLM``) as a small torch module: the same parameters and arithmetic as ``transformers``'.

Pre-RMSNorm blocks (the norm in float32), rotary position embeddings of the default kind (cos / sin from
``position_ids * inv_freq`` in float32, halves rotated), multi-head or grouped-query attention without
biases, a SiLU-gated MLP and, when tied, the output head on the token embeddings. Parameter names are the
checkpoint's (``model.layers.0.self_attn.q_proj.weight``). :func:`supports` says which configs are built.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as nnf

from tools.lean._common import CausalOutput, KVCache, Packing, Segment, additive_mask, head_inputs, step_inputs

__all__ = ["LlamaLMHead", "supports"]


def supports(config: SimpleNamespace) -> bool:
    """Whether ``config`` is a LLaMA this module reproduces (default RoPE, no biases, SiLU, no tensor parallel)."""
    rope = getattr(config, "rope_parameters", None) or {}
    scaling = getattr(config, "rope_scaling", None)
    return (
        getattr(config, "model_type", None) == "llama"
        and getattr(config, "hidden_act", "silu") == "silu"
        and not getattr(config, "attention_bias", False)
        and not getattr(config, "mlp_bias", False)
        and getattr(config, "pretraining_tp", 1) == 1
        and rope.get("rope_type", "default") == "default"
        and scaling is None
        and (rope.get("rope_theta") or getattr(config, "rope_theta", None)) is not None
    )


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(size)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.to(torch.float32)  # the variance in float32 whatever the weights' dtype, as transformers
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: SimpleNamespace, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_head
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, self.n_head * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, hidden, bias=False)

    def forward(self, x: torch.Tensor, segments: Sequence[Segment]) -> torch.Tensor:
        """``x`` ``(N, C)``: the tokens of ``segments``, one after the other; returns the same layout."""
        q_rows, k_rows, v_rows = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        ys, start = [], 0
        for seg in segments:
            rows = slice(start, start + seg.rows)
            start += seg.rows
            q, k, v = (seg.packing.unpack(r[rows]) for r in (q_rows, k_rows, v_rows))  # rows apart
            b, t, _ = q.shape
            q = q.view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, H, T, D)
            k = k.view(b, t, -1, self.head_dim).transpose(1, 2)  # (B, H_kv, T, D)
            v = v.view(b, t, -1, self.head_dim).transpose(1, 2)
            assert seg.rope is not None  # LlamaLMHead builds every segment with its rotary embeddings
            cos, sin = (r.unsqueeze(1) for r in seg.rope)  # (B, 1, T, D)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            if seg.cache is not None:
                k, v = seg.cache.update(k, v, self.layer)
            if self.n_kv != self.n_head:  # grouped-query attention: each key head serves n_head / n_kv query heads
                k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
                v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
            y = nnf.scaled_dot_product_attention(q, k, v, attn_mask=seg.mask, scale=self.head_dim**-0.5)
            ys.append(seg.packing.pack(y.transpose(1, 2).reshape(b, t, -1)))
        return self.o_proj(ys[0] if len(ys) == 1 else torch.cat(ys))


class MLP(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(nnf.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, config: SimpleNamespace, layer: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn, self.mlp = Attention(config, layer), MLP(config)

    def forward(self, x: torch.Tensor, segments: Sequence[Segment]) -> torch.Tensor:
        """``x`` ``(N, C)``: the tokens of ``segments``."""
        x = x + self.self_attn(self.input_layernorm(x), segments)
        return x + self.mlp(self.post_attention_layernorm(x))


class Trunk(nn.Module):
    """``model.*``: token embeddings, layers and the final norm."""

    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Layer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class LlamaLMHead(nn.Module):
    """LLaMA with its output head; ``forward`` takes ``transformers``' arguments for causal LMs.

    Args:
        config: ``config.json`` as attributes (:func:`supports` must hold).
        generation_config: ``generation_config.json`` as attributes (read by ``plain_greedy``).
    """

    selects_logits = True  # forward takes ``logits_at`` (tools.lm.HFLanguageModel's scores use it)
    keeps_hidden = True  # forward takes ``hidden_at``; ``head`` gives their logits (tools.lm's traced generate)

    def __init__(self, config: SimpleNamespace, generation_config: SimpleNamespace) -> None:
        super().__init__()
        self.config, self.generation_config = config, generation_config
        self.model = Trunk(config)
        self.tied = bool(getattr(config, "tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        rope = getattr(config, "rope_parameters", None) or {}
        theta = float(rope.get("rope_theta") or config.rope_theta)
        dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        self.inv_freq: torch.Tensor
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def new_cache(self) -> KVCache:
        """An empty KV cache for :meth:`forward`."""
        return KVCache()

    def _rope(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq.float()  # (B, T, D/2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        logits_at: torch.Tensor | None = None,
        hidden_at: torch.Tensor | None = None,
    ) -> CausalOutput:
        """Logits ``(B, T, V)`` of ``input_ids`` ``(B, T)``; ``attention_mask`` ``(B, seen + T)`` covers the cached
        positions too. ``use_cache`` is accepted for ``transformers``' signature; a given ``cache`` is used.
        ``logits_to_keep``, ``logits_at`` and ``hidden_at`` select positions as in
        :meth:`tools.lean._gpt2.GPT2LMHead.forward`;
        padding among the new positions is packed away there too (:class:`Packing`)."""
        t = input_ids.shape[1]
        attention_mask, position_ids = step_inputs(input_ids, attention_mask, position_ids, cache)
        packing = Packing.of(attention_mask, t)
        x = self.model.embed_tokens(packing.pack(input_ids))  # (N, C): the tokens as rows
        rope = self._rope(position_ids, x.dtype)  # (B, T, D): applied where attention has the rows apart
        segments = [Segment(x.shape[0], packing, additive_mask(attention_mask, t, x.dtype), cache, rope)]
        for layer in self.model.layers:
            x = layer(x, segments)
        x = self.model.norm(x)
        picked, hidden = head_inputs(x, packing, logits_to_keep, logits_at, hidden_at)
        return CausalOutput(logits=nnf.linear(picked, self._head()), hidden=hidden)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output head's logits ``(n, V)`` of final hidden states ``(n, C)`` (:attr:`CausalOutput.hidden`)."""
        return nnf.linear(hidden, self._head())

    def _head(self) -> torch.Tensor:
        return self.model.embed_tokens.weight if self.tied else self.lm_head.weight

    def step_together(
        self, steps: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor, KVCache]]
    ) -> list[torch.Tensor]:
        """One decoding step of several batches at once, as :meth:`tools.lean._gpt2.GPT2LMHead.step_together`."""
        rows = [ids.reshape(-1) for ids, _, _, _ in steps]
        x = self.model.embed_tokens(torch.cat(rows))  # (N, C)
        segments = [
            Segment(
                ids.shape[0], Packing(ids.shape[0], 1), additive_mask(mask, 1, x.dtype), cache, self._rope(pos, x.dtype)
            )
            for ids, mask, pos, cache in steps
        ]
        for layer in self.model.layers:
            x = layer(x, segments)
        logits = nnf.linear(self.model.norm(x), self._head())  # (N, V)
        return list(logits.split([r.shape[0] for r in rows]))
