"""The architecture families the editors support, as data: module templates, config keys and defaults.

:func:`tools.edit._family.family_of` reads these tables and nothing else, and the README's table of supported
types is generated from them (:func:`supported_types_table`; a test checks that the README matches). Adding an
architecture whose layout fits a family is one line in :data:`MODEL_TYPES`; a new layout is one
:class:`FamilyLayout` in :data:`FAMILIES`. Every listed ``model_type`` is proven by the editor contract on a
tiny random model of that type (``tests/tools/edit/test_architectures.py``).

Not supported: OPT, whose decoder layer flattens the tokens to ``(B*T, d)`` before ``fc1`` / ``fc2``, so the
keys the editors hook there have no sequence axis (the editors' hooks and adapters read ``(B, T, d)``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAMILIES", "MODEL_TYPES", "FamilyLayout", "ModelTypeInfo", "supported_types_table"]


@dataclass(frozen=True)
class FamilyLayout:
    """Where one module layout keeps its parts, and the editor defaults tuned for it.

    Templates are dotted module paths with one ``{}`` for the layer index (as ROME's
    ``transformer.h.{}.mlp.c_proj``).
    """

    name: str
    layers_key: str  # config attribute holding the number of blocks
    hidden_key: str  # config attribute holding the residual width d
    intermediate_key: str  # config attribute holding the MLP width (may be None in the config)
    intermediate_factor: int  # MLP width = factor * d when the config leaves it unset
    block: str  # a whole transformer block (its output is the residual stream)
    mlp: str  # the module whose output is the MLP's contribution to the residual stream
    mlp_in: str  # the MLP's input projection (fused gate and up projections where the model fuses them)
    mlp_out: str  # the MLP's output projection: the "value" matrix ROME/MEMIT/FT edit, GRACE/WISE wrap
    attn_out: str  # the attention's output projection
    final_norm: str
    embed: str
    lm_head: str
    grace_radius: float  # GRACE's initial codebook radius at the last layer (a scale of that layer's inputs)
    wise_retrieve_act_ratio: float  # WISE-Retrieve's activation ratio


@dataclass(frozen=True)
class ModelTypeInfo:
    """One supported ``model_type`` (as in ``config.json``): its family and what it adds to that layout."""

    model_type: str
    family: str
    features: str  # what the contract test proves on this type beyond the family's layout


_LLAMA_BLOCK = "model.layers.{}"

FAMILIES: dict[str, FamilyLayout] = {
    layout.name: layout
    for layout in (
        FamilyLayout(
            name="gpt2",
            layers_key="n_layer",
            hidden_key="n_embd",
            intermediate_key="n_inner",
            intermediate_factor=4,
            block="transformer.h.{}",
            mlp="transformer.h.{}.mlp",
            mlp_in="transformer.h.{}.mlp.c_fc",
            mlp_out="transformer.h.{}.mlp.c_proj",
            attn_out="transformer.h.{}.attn.c_proj",
            final_norm="transformer.ln_f",
            embed="transformer.wte",
            lm_head="lm_head",
            grace_radius=3.0,  # measured on the GPT-2 reference model (GraceHyperParams.for_family)
            wise_retrieve_act_ratio=0.7,  # 0.9 before the second gate took over locality (stop 54)
        ),
        FamilyLayout(
            name="llama",
            layers_key="num_hidden_layers",
            hidden_key="hidden_size",
            intermediate_key="intermediate_size",
            intermediate_factor=4,
            block=_LLAMA_BLOCK,
            mlp=_LLAMA_BLOCK + ".mlp",
            mlp_in=_LLAMA_BLOCK + ".mlp.up_proj",
            mlp_out=_LLAMA_BLOCK + ".mlp.down_proj",
            attn_out=_LLAMA_BLOCK + ".self_attn.o_proj",
            final_norm="model.norm",
            embed="model.embed_tokens",
            lm_head="lm_head",
            grace_radius=20.0,  # measured on the LLaMA reference model
            wise_retrieve_act_ratio=0.55,  # 0.7 before the second gate took over locality (stop 54)
        ),
        FamilyLayout(
            name="phi3",  # the LLaMA layout with the gate and up projections fused
            layers_key="num_hidden_layers",
            hidden_key="hidden_size",
            intermediate_key="intermediate_size",
            intermediate_factor=4,
            block=_LLAMA_BLOCK,
            mlp=_LLAMA_BLOCK + ".mlp",
            mlp_in=_LLAMA_BLOCK + ".mlp.gate_up_proj",
            mlp_out=_LLAMA_BLOCK + ".mlp.down_proj",
            attn_out=_LLAMA_BLOCK + ".self_attn.o_proj",
            final_norm="model.norm",
            embed="model.embed_tokens",
            lm_head="lm_head",
            grace_radius=20.0,  # pre-norm residual stream like LLaMA's: its defaults
            wise_retrieve_act_ratio=0.7,
        ),
        FamilyLayout(
            name="gptj",
            layers_key="n_layer",
            hidden_key="n_embd",
            intermediate_key="n_inner",
            intermediate_factor=4,
            block="transformer.h.{}",
            mlp="transformer.h.{}.mlp",
            mlp_in="transformer.h.{}.mlp.fc_in",
            mlp_out="transformer.h.{}.mlp.fc_out",
            attn_out="transformer.h.{}.attn.out_proj",
            final_norm="transformer.ln_f",
            embed="transformer.wte",
            lm_head="lm_head",
            grace_radius=20.0,  # no measurement on a trained GPT-J yet: LLaMA's defaults
            wise_retrieve_act_ratio=0.7,
        ),
        FamilyLayout(
            name="gpt_neox",
            layers_key="num_hidden_layers",
            hidden_key="hidden_size",
            intermediate_key="intermediate_size",
            intermediate_factor=4,
            block="gpt_neox.layers.{}",
            mlp="gpt_neox.layers.{}.mlp",
            mlp_in="gpt_neox.layers.{}.mlp.dense_h_to_4h",
            mlp_out="gpt_neox.layers.{}.mlp.dense_4h_to_h",
            attn_out="gpt_neox.layers.{}.attention.dense",
            final_norm="gpt_neox.final_layer_norm",
            embed="gpt_neox.embed_in",
            lm_head="lm_head",  # "embed_out" before transformers 5
            grace_radius=20.0,
            wise_retrieve_act_ratio=0.7,
        ),
        FamilyLayout(
            name="falcon",
            layers_key="num_hidden_layers",
            hidden_key="hidden_size",
            intermediate_key="ffn_hidden_size",
            intermediate_factor=4,
            block="transformer.h.{}",
            mlp="transformer.h.{}.mlp",
            mlp_in="transformer.h.{}.mlp.dense_h_to_4h",
            mlp_out="transformer.h.{}.mlp.dense_4h_to_h",
            attn_out="transformer.h.{}.self_attention.dense",
            final_norm="transformer.ln_f",
            embed="transformer.word_embeddings",
            lm_head="lm_head",
            grace_radius=20.0,
            wise_retrieve_act_ratio=0.7,
        ),
    )
}

MODEL_TYPES: dict[str, ModelTypeInfo] = {
    info.model_type: info
    for info in (
        ModelTypeInfo(
            model_type="gpt2", family="gpt2", features="LayerNorm, Conv1D (in, out) weights, tied embeddings"
        ),
        ModelTypeInfo(model_type="llama", family="llama", features="RMSNorm, rotary, grouped-query heads"),
        ModelTypeInfo(model_type="mistral", family="llama", features="grouped-query heads, sliding-window attention"),
        ModelTypeInfo(model_type="qwen2", family="llama", features="q/k/v biases, grouped-query heads"),
        ModelTypeInfo(model_type="qwen3", family="llama", features="q/k RMSNorms, grouped-query heads"),
        ModelTypeInfo(
            model_type="gemma", family="llama", features="(1 + w) RMSNorm, scaled embeddings, tied embeddings"
        ),
        ModelTypeInfo(model_type="gemma2", family="llama", features="pre/post-MLP norms, logit soft-capping"),
        ModelTypeInfo(model_type="olmo", family="llama", features="non-parametric LayerNorm"),
        ModelTypeInfo(model_type="olmo2", family="llama", features="post-norms, q/k RMSNorms"),
        ModelTypeInfo(model_type="phi3", family="phi3", features="fused gate/up and q/k/v projections"),
        ModelTypeInfo(model_type="gptj", family="gptj", features="parallel attention and MLP, partial rotary"),
        ModelTypeInfo(model_type="gpt_neox", family="gpt_neox", features="parallel residual, untied output head"),
        ModelTypeInfo(model_type="falcon", family="falcon", features="parallel attention, multi-query heads"),
    )
}


def supported_types_table() -> str:
    """The Markdown table of supported ``model_type`` values, as the README shows it (one line per type)."""
    lines = [
        "| model_type | family | edited MLP output (`mlp_out`) | what the contract proves beyond the layout |",
        "|---|---|---|---|",
    ]
    for info in MODEL_TYPES.values():
        layout = FAMILIES[info.family]
        lines.append(f"| `{info.model_type}` | {info.family} | `{layout.mlp_out}` | {info.features} |")
    return "\n".join(lines) + "\n"
