"""Tiny random causal LMs of every supported ``model_type``, built from a config in process (nothing downloads).

Each has 3 layers, width 64 and the shared tiny tokenizer's vocabulary; where the architecture has them the
config switches on the variants the type is listed for (grouped-query or multi-query heads, q/k norms, biases,
tied or untied embeddings, parallel residuals), so the contract tests exercise them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tools.edit._family_data import MODEL_TYPES
from tools.lm import HFLanguageModel

WIDTH = 64
LAYERS = 3  # WISE's default layer on small models is 1: a 2-layer model's last, where no later attention reads it
HEADS = 4
INIT_STD = 0.1  # wider than the usual 0.02, so that the random logits are not flat and edits show

_LLAMA_LIKE: dict[str, Any] = {
    "hidden_size": WIDTH,
    "intermediate_size": 96,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": 2,  # grouped-query: 2 key/value heads shared by 4 query heads
    "max_position_embeddings": 256,
}

# config keyword arguments per model_type, on top of the vocabulary and special-token ids
CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": {"n_embd": WIDTH, "n_layer": LAYERS, "n_head": HEADS, "n_positions": 256, "tie_word_embeddings": True},
    "llama": dict(_LLAMA_LIKE, tie_word_embeddings=False),
    "mistral": dict(_LLAMA_LIKE, sliding_window=16, tie_word_embeddings=False),
    "qwen2": dict(_LLAMA_LIKE, tie_word_embeddings=True),
    "qwen3": dict(_LLAMA_LIKE, head_dim=16, tie_word_embeddings=True),
    "gemma": dict(_LLAMA_LIKE, head_dim=16, hidden_act="gelu_pytorch_tanh"),
    "gemma2": dict(_LLAMA_LIKE, head_dim=16, sliding_window=16, final_logit_softcapping=30.0),
    "olmo": dict(_LLAMA_LIKE, tie_word_embeddings=False),
    "olmo2": dict(_LLAMA_LIKE, tie_word_embeddings=False),
    "phi3": dict(_LLAMA_LIKE, original_max_position_embeddings=256, tie_word_embeddings=False),
    "gptj": {"n_embd": WIDTH, "n_layer": LAYERS, "n_head": HEADS, "n_positions": 256, "rotary_dim": 8},
    "gpt_neox": {
        "hidden_size": WIDTH,
        "intermediate_size": 128,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "max_position_embeddings": 256,
        "use_parallel_residual": True,
        "tie_word_embeddings": False,
    },
    "falcon": {
        "hidden_size": WIDTH,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "multi_query": True,
        "parallel_attn": True,
        "new_decoder_architecture": False,
        "alibi": False,
        "bias": False,
    },
}
assert set(CONFIGS) == set(MODEL_TYPES), "every supported model_type needs a tiny config (and no other)"

MODEL_TYPE_NAMES = tuple(MODEL_TYPES)


def build(model_type: str, tokenizer: Any, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> HFLanguageModel:
    """A tiny random model of ``model_type`` on the CPU, in ``dtype``, wrapped with ``tokenizer``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    ids = {
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **ids, **CONFIGS[model_type])
    config.initializer_range = INIT_STD
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    return HFLanguageModel(model, tokenizer, name=f"tiny-{model_type}")


def save(lm: HFLanguageModel, out: Path) -> Path:
    """``lm`` as a standard HF directory (config, safetensors weights, tokenizer)."""
    lm.model.save_pretrained(out, safe_serialization=True)
    lm.tokenizer.save_pretrained(out)
    return out
