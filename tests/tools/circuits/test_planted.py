"""A planted circuit is recovered: in a tiny model whose subject can only reach the answer through one known
head, EAP-IG gives every other edge a zero score and the two planted edges keep all of the effect."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tools.circuits import GraphRunner, attribute, circuit_metrics


def _planted(layout: str, layer: int, head: int) -> Any:
    """A random 2-layer model where only head (layer, head) writes to the residual stream, MLPs write
    nothing, and that head's queries are zero (uniform causal attention): the subject token at position 0
    reaches the last position through its values only."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    if layout == "gpt2":
        model: Any = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    else:
        cfg = LlamaConfig(
            vocab_size=40,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=16,
        )
        model = LlamaForCausalLM(cfg)
    model.eval()
    dh, d = 8, 16
    with torch.no_grad():
        for i in range(2):
            if layout == "gpt2":
                block = model.transformer.h[i]
                block.mlp.c_proj.weight.zero_()
                block.mlp.c_proj.bias.zero_()
                w_o = block.attn.c_proj.weight  # (in, out)
                for h in range(2):
                    if (i, h) != (layer, head):
                        w_o[h * dh : (h + 1) * dh, :] = 0
                block.attn.c_attn.weight[:, :d] = 0  # queries
                block.attn.c_attn.bias[:d] = 0
            else:
                block = model.model.layers[i]
                block.mlp.down_proj.weight.zero_()
                w_o = block.self_attn.o_proj.weight  # (out, in)
                for h in range(2):
                    if (i, h) != (layer, head):
                        w_o[:, h * dh : (h + 1) * dh] = 0
                block.self_attn.q_proj.weight.zero_()
    return model


@pytest.mark.parametrize("layout", ["gpt2", "llama"])
@pytest.mark.parametrize(("layer", "head"), [(1, 0), (0, 1)])
def test_planted_head_is_recovered(layout: str, layer: int, head: int) -> None:
    model = _planted(layout, layer, head)
    runner = GraphRunner(model)
    clean = torch.tensor([[3, 10, 11, 12]])
    corrupt = torch.tensor([[4, 10, 11, 12]])
    with torch.no_grad():
        diff = runner.run(clean).logits[0] - runner.run(corrupt).logits[0]
    gold, foil = int(diff.argmax()), int(diff.argmin())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attrs = [set(m.__dict__) for m in model.modules()]

    attr = attribute(runner, clean, corrupt, gold, foil, subject_last=0, steps=4)

    name = f"a{layer}.h{head}"
    planted = {("embed", f"{name}.v"), (name, "logits")}
    top = {(e.upstream, e.downstream) for e in attr.edges[:2]}
    assert top == planted
    biggest = abs(attr.edges[0].score)
    assert all(abs(e.score) < 1e-5 * biggest for e in attr.edges[2:])
    full = {(e.upstream, e.downstream) for e in attr.edges}
    kept, everything, nothing = circuit_metrics(
        runner, clean, corrupt, gold, foil, [frozenset(planted), frozenset(full), frozenset()]
    )
    span = attr.metric_clean - attr.metric_corrupt
    assert span > 0
    assert (kept - attr.metric_corrupt) / span == pytest.approx(1.0, abs=1e-4)
    assert everything == pytest.approx(attr.metric_clean, abs=1e-4)
    assert nothing == pytest.approx(attr.metric_corrupt, abs=1e-4)
    # dropping the planted head's value edge removes the whole effect
    (without,) = circuit_metrics(runner, clean, corrupt, gold, foil, [frozenset(full - {("embed", f"{name}.v")})])
    assert without == pytest.approx(attr.metric_corrupt, abs=1e-4)
    # mean ablation: other subjects' mean at the subject position; the planted edges still carry everything
    refs = torch.tensor([[4, 10, 11, 12], [5, 10, 11, 12], [6, 10, 11, 12]])
    kept_mean, none_mean = circuit_metrics(
        runner, clean, corrupt, gold, foil, [frozenset(planted), frozenset()], reference_ids=refs
    )
    assert kept_mean == pytest.approx(attr.metric_clean, abs=1e-4)
    assert abs(none_mean - attr.metric_clean) > 1e-3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert [set(m.__dict__) for m in model.modules()] == attrs  # nnsight's wrapping is undone
