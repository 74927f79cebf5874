"""A sentence-transformers model of the plain kind, run with transformers alone (a faster start).

``import sentence_transformers`` also imports scikit-learn, peft, datasets and its training stack: most of a
server's startup (measured: 4-9 s of 16-25 s). A model whose ``modules.json`` is exactly Transformer ->
Pooling (mean of the token embeddings) [-> Normalize], as all-MiniLM-L6-v2's is, computes the same vectors
with ``AutoModel`` + ``AutoTokenizer``: tokens truncated at ``max_seq_length``, the last hidden state
averaged over the attention mask, L2-normalised. A test checks the vectors against sentence-transformers'.
Any other layout is left to sentence-transformers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["PooledEncoder"]

_TRANSFORMER = "sentence_transformers.models.Transformer"
_POOLING = "sentence_transformers.models.Pooling"
_NORMALIZE = "sentence_transformers.models.Normalize"


class PooledEncoder:
    """Mean-pooled, normalised sentence embeddings of a Transformer -> mean Pooling model directory."""

    def __init__(self, path: Path, device: str | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_seq_length = int(config.get("max_seq_length", 512))
        self.do_lower_case = bool(config.get("do_lower_case", False))
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(self.device).eval()
        self.dimension = int(self._model.config.hidden_size)

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
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                enc = self._tokenizer(
                    items[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_seq_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**enc).last_hidden_state  # (B, T, H)
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, H)
                out.append(torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy())
        return np.concatenate(out, axis=0).astype(np.float32)
