"""Run a HF model as the graph of :mod:`tools.circuits._graph`, through nnsight.

nnsight (pinned in pyproject) wraps the unchanged transformers model and lets us read and replace module
inputs and outputs in execution order. One forward pass, :meth:`GraphRunner.run`, serves every need of
circuit discovery:

- it records every upstream node's output (embeddings; each head's slice of the output projection, bias
  excluded; each MLP's output), each ``(B, T, D)``;
- it gives each downstream port its own residual input ``resid + delta(port)``: the query/key/value
  projections of one head are recomputed from that copy (the layer's norm applied functionally with the
  module's own weights), the MLP and final-norm inputs are replaced. ``delta`` is a zero leaf tensor when we
  want the gradient of the metric with respect to the port's input (EAP-IG), or the correction that swaps
  non-circuit edges for their corrupted values (faithfulness);
- it can replace the embeddings (integrated gradients interpolate them).

Because only what a port *reads* is replaced, the residual stream itself still carries the true outputs of
every node in this run, so ``resid`` is always the sum of all upstream outputs (plus constant biases).

Known layouts: GPT-2 (``transformer.h[i].attn.c_attn``, Conv1D) and LLaMA (``model.layers[i].self_attn.
{q,k,v,o}_proj``, multi-head attention without grouped keys). Anything else raises
:class:`~tools.errors.UnsupportedLayoutError` before any work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.nn import functional

from tools.circuits._graph import Graph, Port
from tools.errors import UnsupportedLayoutError

__all__ = ["DeltaFn", "GraphRunner", "RunResult"]

logger = logging.getLogger(__name__)

# delta(port, outputs so far) -> added to the port's residual input, or None for no change
DeltaFn = Callable[[Port, dict[str, torch.Tensor]], "torch.Tensor | None"]


@dataclass(frozen=True)
class RunResult:
    """One forward pass: last-position logits ``(B, V)`` and every node's output ``name -> (B, T, D)``."""

    logits: torch.Tensor
    outputs: dict[str, torch.Tensor]


class GraphRunner:
    """Wraps a GPT-2 or LLaMA causal LM (unchanged; no weights are written) for graph-level runs.

    Raises:
        UnsupportedLayoutError: the model is neither a GPT-2 nor a LLaMA layout, or uses grouped keys.
    """

    def __init__(self, model: Any) -> None:
        cfg = getattr(model, "config", None)
        kind = getattr(cfg, "model_type", None)
        self.layout: Literal["gpt2", "llama"]
        if kind == "gpt2" and hasattr(model, "transformer"):
            self.layout = "gpt2"
            n_layers, n_heads, d_model = cfg.n_layer, cfg.n_head, cfg.n_embd  # type: ignore[union-attr]
            self._eps = float(cfg.layer_norm_epsilon)  # type: ignore[union-attr]
        elif kind in ("llama", "mistral", "qwen2") and hasattr(model, "model"):
            self.layout = "llama"
            n_layers, n_heads, d_model = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size  # type: ignore[union-attr]
            if getattr(cfg, "num_key_value_heads", n_heads) != n_heads:
                raise UnsupportedLayoutError(f"{kind}: grouped key/value heads are not supported")
            if getattr(cfg, "attention_bias", False) or getattr(cfg, "mlp_bias", False):
                raise UnsupportedLayoutError(f"{kind}: projection biases are not supported")
            self._eps = float(cfg.rms_norm_eps)  # type: ignore[union-attr]
        else:
            raise UnsupportedLayoutError(
                f"circuit analysis knows GPT-2 and LLaMA layouts, not {kind or type(model).__name__!r}"
            )
        self.model = model
        self.graph = Graph(n_layers=int(n_layers), n_heads=int(n_heads))
        self.d_model = int(d_model)
        self.d_head = self.d_model // self.graph.n_heads
        if self.layout == "llama" and getattr(cfg, "head_dim", self.d_head) != self.d_head:
            raise UnsupportedLayoutError("llama: head_dim * heads must equal the hidden size")

    @contextmanager
    def _wrapped(self) -> Iterator[Any]:
        """nnsight wraps each module's ``forward`` in place; undo it on exit so the model is left as given."""
        import nnsight

        modules = list(self.model.modules())
        before = [set(m.__dict__) for m in modules]
        try:
            yield nnsight.NNsight(self.model)
        finally:
            for module, keys in zip(modules, before, strict=True):
                for key in set(module.__dict__) - keys:
                    delattr(module, key)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- the pass ----------------------------------------------------------------------------------------

    def run(
        self, input_ids: torch.Tensor, *, embeds: torch.Tensor | None = None, delta: DeltaFn | None = None
    ) -> RunResult:
        """One forward pass of ``input_ids`` ``(B, T)`` with optional replaced embeddings and port deltas."""
        outputs: dict[str, torch.Tensor] = {}
        none: DeltaFn = lambda port, outs: None  # noqa: E731
        fn = delta or none
        with self._wrapped() as nm:
            if self.layout == "gpt2":
                logits = self._run_gpt2(nm, input_ids, embeds, fn, outputs)
            else:
                logits = self._run_llama(nm, input_ids, embeds, fn, outputs)
        return RunResult(logits=logits[:, -1, :].float(), outputs=dict(outputs))

    def _ports(self, layer: int, kind: str) -> list[Port]:
        return [p for p in self.graph.ports if p.layer == layer and p.kind == kind]

    def _head_inputs(
        self, resid: torch.Tensor, layer: int, kind: str, fn: DeltaFn, outs: dict[str, torch.Tensor]
    ) -> list[torch.Tensor | None]:
        """The changed residual copy of each head's ``kind`` port, or None where nothing changes."""
        result: list[torch.Tensor | None] = []
        for port in self._ports(layer, kind):
            d = fn(port, outs)
            result.append(None if d is None else resid + d)
        return result

    def _run_gpt2(
        self, nm: Any, ids: torch.Tensor, embeds: torch.Tensor | None, fn: DeltaFn, outs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        dh, n = self.d_head, self.d_model
        with nm.trace(ids):
            tr = nm.transformer
            if embeds is not None:
                tr.drop.output = embeds
            outs["embed"] = embeds if embeds is not None else tr.drop.output
            for layer, block in enumerate(tr.h):
                resid = block.ln_1.input
                ln = block.ln_1
                c_attn = block.attn.c_attn
                qkv = c_attn.output
                new = None
                for i, kind in enumerate(("q", "k", "v")):
                    for h, x in enumerate(self._head_inputs(resid, layer, kind, fn, outs)):
                        if x is None:
                            continue
                        y = functional.layer_norm(x, (n,), ln.weight, ln.bias, self._eps)
                        sl = slice(i * n + h * dh, i * n + (h + 1) * dh)
                        new = qkv.clone() if new is None else new
                        new[..., sl] = y @ c_attn.weight[:, sl] + c_attn.bias[sl]
                if new is not None:
                    c_attn.output = new
                z = block.attn.c_proj.input
                w_o = block.attn.c_proj.weight  # Conv1D: (in, out)
                for h in range(self.graph.n_heads):
                    outs[f"a{layer}.h{h}"] = z[..., h * dh : (h + 1) * dh] @ w_o[h * dh : (h + 1) * dh, :]
                mid = block.ln_2.input
                d = fn(self._ports(layer, "mlp")[0], outs)
                if d is not None:
                    block.ln_2.input = mid + d
                outs[f"m{layer}"] = block.mlp.output
            final = tr.ln_f.input
            d = fn(self._ports(self.graph.n_layers, "logits")[0], outs)
            if d is not None:
                tr.ln_f.input = final + d
            logits = nm.lm_head.output.save()
        return logits

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """LlamaRMSNorm, written out (float32 statistics, as transformers computes them)."""
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self._eps)
        return weight * h.to(dtype)

    def _run_llama(
        self, nm: Any, ids: torch.Tensor, embeds: torch.Tensor | None, fn: DeltaFn, outs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        dh = self.d_head
        with nm.trace(ids):
            base = nm.model
            if embeds is not None:
                base.embed_tokens.output = embeds
            outs["embed"] = embeds if embeds is not None else base.embed_tokens.output
            for layer, block in enumerate(base.layers):
                resid = block.input_layernorm.input
                w_ln = block.input_layernorm.weight
                attn = block.self_attn
                for kind, proj in (("q", attn.q_proj), ("k", attn.k_proj), ("v", attn.v_proj)):
                    out = proj.output
                    new = None
                    for h, x in enumerate(self._head_inputs(resid, layer, kind, fn, outs)):
                        if x is None:
                            continue
                        sl = slice(h * dh, (h + 1) * dh)
                        new = out.clone() if new is None else new
                        new[..., sl] = self._rms(x, w_ln) @ proj.weight[sl, :].T
                    if new is not None:
                        proj.output = new
                z = attn.o_proj.input
                w_o = attn.o_proj.weight  # Linear: (out, in)
                for h in range(self.graph.n_heads):
                    outs[f"a{layer}.h{h}"] = z[..., h * dh : (h + 1) * dh] @ w_o[:, h * dh : (h + 1) * dh].T
                mid = block.post_attention_layernorm.input
                d = fn(self._ports(layer, "mlp")[0], outs)
                if d is not None:
                    block.post_attention_layernorm.input = mid + d
                outs[f"m{layer}"] = block.mlp.output
            final = base.norm.input
            d = fn(self._ports(self.graph.n_layers, "logits")[0], outs)
            if d is not None:
                base.norm.input = final + d
            logits = nm.lm_head.output.save()
        return logits
