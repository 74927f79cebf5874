"""Where the object is moved to the answer: the gold object through the layers, at the last position.

Two per-layer views of one prompt (the paper's hallucination analysis asks where the object stops being moved):

- **logit lens** — the residual stream after the embeddings and after each block, read through the model's own
  final norm and unembedding: the gold object's log-probability and rank at each depth;
- **direct attribution** — each block's heads and MLP written into the logit difference ``gold - foil`` (the
  EAP-IG metric) through the unembedding, with the final norm's scale frozen at its clean value (so the parts
  add up to the logit difference, up to bias terms that belong to no block).

``moved_until`` is the first depth at which the lens log-probability of the gold object reaches its maximum:
after it no block raises the object any further. The model's weights are only read; the one hook (on the final
norm, to read its input) is always removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tools.circuits._runner import GraphRunner, RunResult

__all__ = ["LayerLens", "layer_lens"]


@dataclass(frozen=True)
class LayerLens:
    """The gold object through the layers at the last position.

    ``logprob`` / ``rank`` have ``n_layers + 1`` entries: after the embeddings (depth 0) and after each block
    (depth ``l + 1``); the last one is the model's own output. ``heads`` / ``mlps`` have ``n_layers``
    entries: block ``l``'s direct contribution to ``logit(gold) - logit(foil)``.
    """

    logprob: tuple[float, ...]
    rank: tuple[int, ...]
    heads: tuple[float, ...]
    mlps: tuple[float, ...]

    @property
    def moved_until(self) -> int:
        """The first depth at which the gold object's lens log-probability peaks."""
        best = max(self.logprob)
        return next(i for i, v in enumerate(self.logprob) if v == best)


def _final_norm(runner: GraphRunner) -> Any:
    model = runner.model
    return model.transformer.ln_f if runner.layout == "gpt2" else model.model.norm


def layer_lens(
    runner: GraphRunner, ids: torch.Tensor, gold: int, foil: int, *, run: RunResult | None = None
) -> LayerLens:
    """The :class:`LayerLens` of ``ids`` ``(1, T)`` (one plain forward pass, and one graph pass unless ``run``,
    the graph run of ``ids``, is given)."""
    model = runner.model
    norm = _final_norm(runner)
    unembed = model.get_output_embeddings().weight  # (V, D)
    captured: list[torch.Tensor] = []
    hook = norm.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach()))
    try:
        with torch.no_grad():
            out = model(ids, output_hidden_states=True)
    finally:
        hook.remove()
    with torch.no_grad():
        states = out.hidden_states  # n_layers + 1; the last is already normed by the model
        logprob: list[float] = []
        rank: list[int] = []
        for depth, state in enumerate(states):
            x = state[0, -1]
            logits = (x if depth == len(states) - 1 else norm(x)) @ unembed.T  # (V,)
            logp = torch.log_softmax(logits.float(), -1)
            logprob.append(float(logp[gold]))
            rank.append(int((logp > logp[gold]).sum()))
        final = captured[-1][0, -1].float()  # (D,) the final norm's input, the whole residual stream
        direction = (unembed[gold] - unembed[foil]).float() * norm.weight.float()  # (D,)
        if runner.layout == "gpt2":
            scale = torch.sqrt(final.var(unbiased=False) + norm.eps)

            def into(v: torch.Tensor) -> float:
                return float(((v - v.mean()) / scale) @ direction)  # LayerNorm: centred, frozen scale
        else:
            scale = torch.sqrt(final.pow(2).mean() + norm.variance_epsilon)

            def into(v: torch.Tensor) -> float:
                return float((v / scale) @ direction)  # RMSNorm: frozen scale

        outs = (run or runner.run(ids)).outputs
        g = runner.graph
        heads = [
            sum(into(outs[f"a{layer}.h{h}"][0, -1].float()) for h in range(g.n_heads)) for layer in range(g.n_layers)
        ]
        mlps = [into(outs[f"m{layer}"][0, -1].float()) for layer in range(g.n_layers)]
    return LayerLens(logprob=tuple(logprob), rank=tuple(rank), heads=tuple(heads), mlps=tuple(mlps))
