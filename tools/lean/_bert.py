"""A BERT encoder (``BertModel`` without its pooler) as a small torch module, for MiniLM sentence embeddings.

Post-LayerNorm layers ``ln(x + attn(x))``, ``ln(h + ffn(h))`` with exact (erf) GELU, absolute position
embeddings and token type 0 for every token; padding keys are masked. Parameter names are the checkpoint's
(``encoder.layer.0.attention.self.query.weight``); the pooler's weights are not used (mean pooling reads the
last hidden state). :func:`supports` says which configs are built.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as nnf

__all__ = ["BertEncoder", "supports"]


def supports(config: SimpleNamespace) -> bool:
    """Whether ``config`` is a plain BERT this module reproduces (absolute positions, erf GELU, no decoder)."""
    return (
        getattr(config, "model_type", None) == "bert"
        and getattr(config, "hidden_act", "gelu") == "gelu"
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
    )


class _Dense(nn.Module):
    """``dense`` + ``LayerNorm`` around a residual (BERT's ``*Output`` blocks)."""

    def __init__(self, n_in: int, n_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _SelfAttention(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.n_head = config.num_attention_heads
        self.query, self.key, self.value = (
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, hidden),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = (p(x).view(b, t, self.n_head, -1).transpose(1, 2) for p in (self.query, self.key, self.value))
        y = nnf.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=q.shape[-1] ** -0.5)  # (B, H, T, D)
        return y.transpose(1, 2).reshape(b, t, c)


class _Attention(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.self = _SelfAttention(config)
        self.output = _Dense(config.hidden_size, config.hidden_size, config.layer_norm_eps)


class _Intermediate(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)


class _Stack(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))


class _Layer(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.attention = _Attention(config)
        self.intermediate = _Intermediate(config)
        self.output = _Dense(config.intermediate_size, config.hidden_size, config.layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.attention.output(self.attention.self(x, mask), x)
        return self.output(nnf.gelu(self.intermediate.dense(h)), h)


class _Embeddings(nn.Module):
    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class BertEncoder(nn.Module):
    """BERT's embeddings and encoder; :meth:`forward` gives the last hidden state ``(B, T, H)``.

    Args:
        config: ``config.json`` as attributes (:func:`supports` must hold).
    """

    def __init__(self, config: SimpleNamespace) -> None:
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Stack(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The last hidden state of ``input_ids`` ``(B, T)``; ``attention_mask`` ``(B, T)`` is 0 on padding."""
        e = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        x = e.word_embeddings(input_ids) + e.token_type_embeddings(torch.zeros_like(input_ids))
        x = e.LayerNorm(x + e.position_embeddings(positions))
        dtype = x.dtype
        mask = torch.zeros(attention_mask.shape, dtype=dtype, device=x.device)
        mask = mask.masked_fill(attention_mask == 0, torch.finfo(dtype).min)[:, None, None, :]  # (B, 1, 1, T)
        for layer in self.encoder.layer:
            x = layer(x, mask)
        return x
