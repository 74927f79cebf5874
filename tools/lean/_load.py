"""Which model directories the lean modules can run, and loading them (``safetensors`` weights, ``tokenizers``).

A directory runs lean when its architecture is one of :data:`CAUSAL` (as configured: each module's
``supports``), its weights are one ``model.safetensors``, its tokenizer is a ``tokenizer.json``, and it holds
no saved edit adapters (``adapters.json``: GRACE / WISE modules that only ``transformers``' model carries).
Edited weights saved with their journal (``tools.edit.save_edited``) load as they are: the journal matters
only to a rollback, which goes through the ``transformers`` model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from tools.errors import ModelLoadError
from tools.lean import _bert, _gpt2, _llama
from tools.lean._common import read_config
from tools.lean._tokenizer import LeanTokenizer

__all__ = ["CAUSAL", "lean_causal_reason", "load_causal_lm", "load_encoder"]

logger = logging.getLogger(__name__)

# architecture name in config.json -> (module class, its ``supports``)
CAUSAL: dict[str, tuple[type[nn.Module], Any]] = {
    "GPT2LMHeadModel": (_gpt2.GPT2LMHead, _gpt2.supports),
    "LlamaForCausalLM": (_llama.LlamaLMHead, _llama.supports),
}


def lean_causal_reason(path: Path) -> str | None:
    """Why ``path`` cannot run on the lean modules, or ``None`` when it can (nothing but configs is read)."""
    try:
        config = read_config(path, "config.json")
    except (OSError, ValueError) as exc:
        return f"unreadable config.json ({exc})"
    arch = (getattr(config, "architectures", None) or [None])[0]
    if arch not in CAUSAL:
        return f"architecture {arch!r} has no lean module"
    if not CAUSAL[arch][1](config):
        return f"{arch} configured beyond the lean module (see tools/lean/_{config.model_type}.py)"
    for name, why in (("model.safetensors", "weights"), ("tokenizer.json", "tokenizer")):
        if not (path / name).is_file():
            return f"no {name} ({why})"
    if (path / "adapters.json").is_file():
        return "saved edit adapters (adapters.json)"
    return None


def load_causal_lm(path: Path, device: torch.device, dtype: torch.dtype) -> tuple[nn.Module, LeanTokenizer]:
    """The lean module of ``path`` with its weights on ``device`` in ``dtype``, and its tokenizer.

    Raises:
        ModelLoadError: :func:`lean_causal_reason` gives a reason, or the weights do not fit the config.
    """
    reason = lean_causal_reason(path)
    if reason is not None:
        raise ModelLoadError(f"{path} cannot run without transformers: {reason}")
    config = read_config(path, "config.json")
    cls = CAUSAL[config.architectures[0]][0]
    model = cls(config, read_config(path, "generation_config.json"))
    _load_weights(model, path, device, dtype, unused=("lm_head.weight",) if _tied(config) else ())
    return model, LeanTokenizer(path)


def load_encoder(path: Path, device: torch.device) -> tuple[_bert.BertEncoder, LeanTokenizer] | None:
    """MiniLM's BERT encoder and tokenizer from ``path`` in float32, or ``None`` when ``path`` is not a plain
    BERT with ``model.safetensors`` and ``tokenizer.json``.

    Raises:
        ModelLoadError: the weights do not fit the config, or the tokenizer is unreadable.
    """
    try:
        config = read_config(path, "config.json")
    except (OSError, ValueError):
        return None
    if (
        not _bert.supports(config)
        or not (path / "model.safetensors").is_file()
        or not (path / "tokenizer.json").is_file()
    ):
        return None
    model = _bert.BertEncoder(config)
    _load_weights(model, path, device, torch.float32, unused=("pooler.", "embeddings.position_ids"))
    return model, LeanTokenizer(path)


def _tied(config: SimpleNamespace) -> bool:
    return bool(getattr(config, "tie_word_embeddings", True))


def _load_weights(
    model: nn.Module, path: Path, device: torch.device, dtype: torch.dtype, unused: tuple[str, ...]
) -> None:
    """``model.safetensors`` into ``model`` (every parameter required; keys starting with ``unused`` dropped)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path / "model.safetensors"), device=str(device))
    except (OSError, SafetensorError) as exc:
        raise ModelLoadError(f"cannot read the weights in {path}: {exc}") from exc
    state = {k: v for k, v in state.items() if not k.startswith(unused)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # missing, unexpected or misshapen tensors
        raise ModelLoadError(f"the weights in {path} do not fit its config: {exc}") from exc
    model.to(device=device, dtype=dtype)
    model.eval()
