"""A sentence-transformers model of the plain kind, run without sentence-transformers (a faster start).

``import sentence_transformers`` also imports scikit-learn, peft, datasets and its training stack: most of a
server's startup (measured: 4-9 s of 16-25 s). A model whose ``modules.json`` is exactly Transformer ->
Pooling (mean of the token embeddings) [-> Normalize], as all-MiniLM-L6-v2's is, computes the same vectors
with ``AutoModel`` + ``AutoTokenizer``: tokens truncated at ``max_seq_length``, the last hidden state
averaged over the attention mask, L2-normalised. A test checks the vectors against sentence-transformers'.
Any other layout is left to sentence-transformers. In float32 an ``encoder_loader`` may run the model
instead of ``AutoModel``: the composition root passes :func:`tools.lean.load_encoder` (MiniLM's BERT with
``safetensors`` + ``tokenizers``, no ``transformers`` import: ~3 s less CPU at start, the same vectors).

``precision="bf16"`` runs the Linear layers in bfloat16 (weights cast once, activations under autocast;
LayerNorm, softmax and the pooling stay float32): on a CPU with AMX / AVX512-BF16 about 2.4x the float32
throughput at a cosine of ~0.99999 to the float32 vectors (neighbour recall@10 ~0.995 on world sentences,
``bench/embedder_bench.py``). Casting the weights up front rather than letting autocast cast them on every
call is what makes one short query cheaper than in float32 (measured 9.0 vs 12.4 ms CPU at one thread; plain
autocast took 15.5 ms).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tools.errors import EmbedderError, ModelLoadError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EncoderLoader", "PooledEncoder"]

# (model directory, torch device) -> (model, tokenizer), or None when the loader cannot run that directory
EncoderLoader = Callable[[Path, Any], "tuple[Any, Any] | None"]

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


class PooledEncoder:
    """Mean-pooled, normalised sentence embeddings of a Transformer -> mean Pooling model directory.

    Args:
        path: the model directory (see :meth:`supports`).
        device: a torch device name (``cuda`` when available, else ``cpu``, when ``None``).
        precision: ``fp32``, or ``bf16`` for the Linear layers (see the module docstring).
        encoder_loader: ``(path, device) -> (model, tokenizer)`` or ``None`` when it cannot run ``path``; the
            model maps ``(input_ids, attention_mask)`` to the last hidden state, the tokenizer is called as a
            ``transformers`` one. Used in float32 only; ``runtime`` says which ran (``lean`` or
            ``transformers``).

    Raises:
        EmbedderError: ``bf16`` on a device without bfloat16 support (nothing is loaded).
    """

    def __init__(
        self,
        path: Path,
        device: str | None = None,
        precision: Literal["fp32", "bf16"] = "fp32",
        *,
        encoder_loader: EncoderLoader | None = None,
    ) -> None:
        import torch

        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if precision == "bf16" and not _bf16_supported(torch, self.device):
            raise EmbedderError(f"bf16 embeddings need a {self.device.type} with bfloat16 support (AMX or AVX512-BF16)")
        config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_seq_length = int(config.get("max_seq_length", 512))
        self.do_lower_case = bool(config.get("do_lower_case", False))
        self._torch = torch
        self._tokenizer, self._model, self.runtime = _load(
            path, self.device, encoder_loader if precision == "fp32" else None
        )
        self.precision = precision
        if precision == "bf16":
            for module in self._model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
        self.dimension = int(self._model.config.hidden_size)

    def _hidden(self, enc: dict[str, Any]) -> Any:
        """The last hidden state ``(B, T, H)`` of a tokenized batch."""
        if self.runtime == "lean":
            return self._model(enc["input_ids"], enc["attention_mask"])
        return self._model(**enc).last_hidden_state

    @staticmethod
    def supports(path: Path) -> bool:
        """Whether ``path`` is a Transformer -> mean Pooling [-> Normalize] model with its configs on disk."""
        try:
            modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
            types = [m["type"] for m in sorted(modules, key=lambda m: m["idx"])]
            if types not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
                return False
            if modules[0].get("path", "") != "" or not (path / "sentence_bert_config.json").is_file():
                return False
            pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            return False
        modes = {k: v for k, v in pooling.items() if k.startswith("pooling_mode_")}
        return modes.get("pooling_mode_mean_tokens") is True and sum(bool(v) for v in modes.values()) == 1

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """``(N, dim)`` float32 unit vectors, in the order of ``texts``."""
        import numpy as np

        torch = self._torch
        out: list[Any] = []
        items = [t.lower() for t in texts] if self.do_lower_case else list(texts)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with torch.inference_mode(), autocast:
            for start in range(0, len(items), batch_size):
                enc = self._tokenizer(
                    items[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                )
                enc = {k: v.to(self.device) for k, v in enc.items()}
                hidden = self._hidden(enc)  # (B, T, H)
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                hidden = hidden.float()  # pool and normalise in float32 whatever ran the layers
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
                out.append(torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32)


def _load(path: Path, device: Any, loader: EncoderLoader | None) -> tuple[Any, Any, Literal["lean", "transformers"]]:
    """Tokenizer, model and runtime: ``loader``'s when it runs ``path``, else ``transformers``' ``AutoModel``."""
    if loader is not None:
        try:
            loaded = loader(path, device)
        except ModelLoadError as exc:
            raise EmbedderError(f"cannot load embedder from {path}: {exc}") from exc
        if loaded is not None:
            return loaded[1], loaded[0], "lean"
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(path), local_files_only=True)
    model.to(device).eval()
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True), model, "transformers"


def _bf16_supported(torch: Any, device: Any) -> bool:
    """Whether ``device`` runs bfloat16 matrix products natively (CUDA: compute capability; CPU: oneDNN)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)  # private, hence the guard
    return bool(probe()) if probe is not None else False
