"""GPT-2 (``GPT2LMHeadModel``) as a small torch module: the same parameters and arithmetic as ``transformers``'.

Pre-LayerNorm blocks ``x + attn(ln_1(x))``, ``x + mlp(ln_2(x))``; the projections are ``Conv1D`` layers
(weight ``(in, out)``, ``addmm``), the activation is ``gelu_new`` (the tanh formula), learned position
embeddings, and the output head is tied to the token embeddings. Parameter names are the checkpoint's
(``transformer.h.0.attn.c_attn.weight``), so ``model.safetensors`` loads with ``load_state_dict`` as is.
Only the configuration the world models use is built; :func:`supports` says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as nnf

from tools.lean._common import CausalOutput, KVCache, Packing, Segment, additive_mask, head_inputs, step_inputs

__all__ = ["GPT2LMHead", "supports"]


def supports(config: SimpleNamespace) -> bool:
    """Whether ``config`` is a plain GPT-2 this module reproduces (no cross-attention, no attention variants)."""
    return (
        getattr(config, "model_type", None) == "gpt2"
        and getattr(config, "activation_function", "gelu_new") == "gelu_new"
        and not getattr(config, "add_cross_attention", False)
        and not getattr(config, "scale_attn_by_inverse_layer_idx", False)
        and not getattr(config, "reorder_and_upcast_attn", False)
        and getattr(config, "scale_attn_weights", True)
        and getattr(config, "tie_word_embeddings", True)
    )


class Conv1D(nn.Module):
    """``transformers``' ``Conv1D``: a Linear layer whose weight is stored transposed, ``(in, out)``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.view(*x.shape[:-1], self.weight.shape[1])


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's tanh GELU, written as ``transformers``' ``NewGELUActivation`` (not ``nnf.gelu(approximate=...)``,
    whose kernel rounds differently).

    Without autograd the same operations run in place on one buffer (one allocation instead of six, the
    same values bit for bit: each step is the same elementwise product or sum with its operands swapped,
    and halving last instead of first is exact).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    y = torch.pow(x, 3.0).mul_(0.044715).add_(x).mul_(math.sqrt(2.0 / math.pi)).tanh_().add_(1.0)
    return y.mul_(x).mul_(0.5)


class Attention(nn.Module):
    def __init__(self, config: SimpleNamespace, layer: int) -> None:
        super().__init__()
        self.n_head, self.layer = config.n_head, layer
        self.c_attn = Conv1D(config.n_embd, 3 * config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor, segments: Sequence[Segment]) -> torch.Tensor:
        """``x`` ``(N, C)``: the tokens of ``segments``, one after the other; returns the same layout."""
        c = x.shape[1]
        qkv_rows = torch.addmm(self.c_attn.bias, x, self.c_attn.weight)  # (N, 3C)
        ys, start = [], 0
        for seg in segments:
            qkv = seg.packing.unpack(qkv_rows[start : start + seg.rows])  # (B, T, 3C): rows apart
            start += seg.rows
            b, t = qkv.shape[:2]
            q, k, v = qkv.view(b, t, 3, self.n_head, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, T, D) each
            if seg.cache is not None:
                k, v = seg.cache.update(k, v, self.layer)
            y = nnf.scaled_dot_product_attention(q, k, v, attn_mask=seg.mask, scale=q.shape[-1] ** -0.5)
            ys.append(seg.packing.pack(y.transpose(1, 2).reshape(b, t, c)))
        y = ys[0] if len(ys) == 1 else torch.cat(ys)
        return torch.addmm(self.c_proj.bias, y, self.c_proj.weight)


class MLP(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        inner = getattr(config, "n_inner", None) or 4 * config.n_embd
        self.c_fc = Conv1D(config.n_embd, inner)
        self.c_proj = Conv1D(inner, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: SimpleNamespace, layer: int) -> None:
        super().__init__()
        eps = config.layer_norm_epsilon
        self.ln_1, self.ln_2 = nn.LayerNorm(config.n_embd, eps=eps), nn.LayerNorm(config.n_embd, eps=eps)
        self.attn, self.mlp = Attention(config, layer), MLP(config)

    def forward(self, x: torch.Tensor, segments: Sequence[Segment]) -> torch.Tensor:
        """``x`` ``(N, C)``: the tokens of ``segments``."""
        x = x + self.attn(self.ln_1(x), segments)
        return x + self.mlp(self.ln_2(x))


class Trunk(nn.Module):
    """``transformer.*``: embeddings, blocks and the final LayerNorm."""

    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)


class GPT2LMHead(nn.Module):
    """GPT-2 with its tied output head; ``forward`` takes ``transformers``' arguments for causal LMs.

    Args:
        config: ``config.json`` as attributes (:func:`supports` must hold).
        generation_config: ``generation_config.json`` as attributes (read by ``plain_greedy``).
    """

    selects_logits = True  # forward takes ``logits_at`` (tools.lm.HFLanguageModel's scores use it)
    keeps_hidden = True  # forward takes ``hidden_at``; ``head`` gives their logits (tools.lm's traced generate)

    def __init__(self, config: SimpleNamespace, generation_config: SimpleNamespace) -> None:
        super().__init__()
        self.config, self.generation_config = config, generation_config
        self.transformer = Trunk(config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def new_cache(self) -> KVCache:
        """An empty KV cache for :meth:`forward`."""
        return KVCache()

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

        ``logits_to_keep`` = k: the last k positions' logits only, ``(B, k, V)``; ``logits_at`` (``(B, T)``
        bool): only those positions' logits, ``(n, V)`` in row-major order (the output head costs one
        matrix product per position: a score reads a few positions of each row). ``hidden_at`` (``(B, T)``
        bool): also those positions' final hidden states, ``hidden`` ``(m, C)`` (their logits later by
        :meth:`head`, for only the ones a caller turns out to need). The tokens run as rows
        ``(N, C)``, padding among the new positions packed away (:class:`Packing`); padding positions'
        logits (read by nobody) are the head's logits of a zero vector.
        """
        t = input_ids.shape[1]
        attention_mask, position_ids = step_inputs(input_ids, attention_mask, position_ids, cache)
        tr = self.transformer
        packing = Packing.of(attention_mask, t)
        x = tr.wte(packing.pack(input_ids)) + tr.wpe(packing.pack(position_ids))  # (N, C): the tokens as rows
        segments = [Segment(x.shape[0], packing, additive_mask(attention_mask, t, x.dtype), cache)]
        for block in tr.h:
            x = block(x, segments)
        x = tr.ln_f(x)
        picked, hidden = head_inputs(x, packing, logits_to_keep, logits_at, hidden_at)
        return CausalOutput(logits=nnf.linear(picked, tr.wte.weight), hidden=hidden)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output head's logits ``(n, V)`` of final hidden states ``(n, C)`` (:attr:`CausalOutput.hidden`)."""
        return nnf.linear(hidden, self.transformer.wte.weight)

    def step_together(
        self, steps: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor, KVCache]]
    ) -> list[torch.Tensor]:
        """One decoding step of several batches at once: each ``(input_ids (B, 1), attention_mask (B, S),
        position_ids (B, 1), cache)`` as one :meth:`forward` call would take it; its next-token logits ``(B, V)``.

        The batches share one pass over the weights (projections, MLP, head: a decoding step reads every
        weight once whatever its rows) and attend each within its own cache, unpadded to the others' length.
        """
        tr = self.transformer
        rows = [ids.reshape(-1) for ids, _, _, _ in steps]
        x = tr.wte(torch.cat(rows)) + tr.wpe(torch.cat([pos.reshape(-1) for _, _, pos, _ in steps]))  # (N, C)
        segments = [
            Segment(ids.shape[0], Packing(ids.shape[0], 1), additive_mask(mask, 1, x.dtype), cache)
            for ids, mask, _, cache in steps
        ]
        for block in tr.h:
            x = block(x, segments)
        logits = nnf.linear(tr.ln_f(x), tr.wte.weight)  # (N, V)
        return list(logits.split([r.shape[0] for r in rows]))
