"""A tokenizer read from ``tokenizer.json`` with the ``tokenizers`` library alone (no ``transformers`` import).

It offers the part of a ``transformers`` fast tokenizer that :class:`tools.lm.HFLanguageModel` and
:class:`memory.PooledEncoder` call: encoding a batch into padded ``(B, T)`` tensors on either side
(optionally truncated), ``pad``, ``batch_decode`` / ``decode`` and the pad / end-of-text ids. The ids are
the same as ``AutoTokenizer``'s for the files it reads: both run the same ``tokenizer.json``; the special
tokens come from ``tokenizer_config.json`` (and ``special_tokens_map.json`` where that is the only source).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tools.errors import ModelLoadError

__all__ = ["LeanTokenizer"]

# Up to this many texts are encoded (decoded) one after another in this thread rather than by ``tokenizers``'
# batch call, which hands them to its worker threads: for the few prompts of an ask that costs more than the
# work (5 prompts, one thread, 2 shared cores at load ~5-7: 129 vs 100 us of process CPU and 632 vs 459 us
# wall to encode; 19 vs 13 us CPU and 133 vs 40 us wall to decode). The ids and texts are the same.
_ONE_BY_ONE = 32


class LeanTokenizer:
    """``tokenizer.json`` + special tokens, with ``transformers``' call signature for the cases used here.

    Args:
        path: a model directory holding ``tokenizer.json`` (and ``tokenizer_config.json``).

    Raises:
        ModelLoadError: the files are missing or unreadable, or a named special token is not in the vocabulary.
    """

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
            config = _read_json(path / "tokenizer_config.json")
            special = {**_read_json(path / "special_tokens_map.json"), **config}
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ModelLoadError(f"cannot read the tokenizer in {path}: {exc}") from exc
        self._tok.no_padding()
        self._tok.no_truncation()
        self._cut: dict[int, Any] = {}
        self.padding_side: str = str(config.get("padding_side", "right"))
        self.eos_token: str | None = _token_text(special.get("eos_token"))
        self.pad_token: str | None = _token_text(special.get("pad_token"))
        for token in (self.eos_token, self.pad_token):
            if token is not None and self._tok.token_to_id(token) is None:
                raise ModelLoadError(f"{path}: special token {token!r} is not in the tokenizer's vocabulary")

    @property
    def eos_token_id(self) -> int | None:
        return None if self.eos_token is None else self._tok.token_to_id(self.eos_token)

    @property
    def pad_token_id(self) -> int | None:
        return None if self.pad_token is None else self._tok.token_to_id(self.pad_token)

    def __len__(self) -> int:
        """The vocabulary with its added tokens (as ``len()`` of a ``transformers`` tokenizer)."""
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def __call__(
        self,
        texts: str | Sequence[str],
        *,
        return_tensors: str | None = None,
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        add_special_tokens: bool = True,
    ) -> dict[str, Any]:
        """``{"input_ids", "attention_mask"}`` of ``texts``: lists of ids, or padded ``(B, T)`` tensors with
        ``return_tensors="pt"`` (padding on :attr:`padding_side`); ``truncation`` keeps the first ``max_length``
        tokens, special tokens included (as ``transformers``)."""
        single = isinstance(texts, str)
        batch = [texts] if isinstance(texts, str) else list(texts)
        tok = self._truncating(max_length) if truncation and max_length is not None else self._tok
        if len(batch) <= _ONE_BY_ONE:
            encoded = [tok.encode(text, add_special_tokens=add_special_tokens) for text in batch]
        else:
            encoded = tok.encode_batch(batch, add_special_tokens=add_special_tokens)
        rows = [list(e.ids) for e in encoded]
        if return_tensors == "pt":  # rows of different lengths are padded whatever ``padding`` says
            return self.pad({"input_ids": rows}, return_tensors="pt")
        if single:
            return {"input_ids": rows[0], "attention_mask": [1] * len(rows[0])}
        return {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}

    def _truncating(self, max_length: int) -> Any:
        """A copy of the tokenizer that truncates to ``max_length`` (special tokens kept, as ``transformers``);
        a copy, so that the shared one's settings never change under a concurrent call."""
        tok = self._cut.get(max_length)
        if tok is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(self._tok.to_str())
            tok.enable_truncation(max_length)
            self._cut[max_length] = tok
        return tok

    def pad(self, encoded: dict[str, list[list[int]]], return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        """Pad ``encoded["input_ids"]`` to its longest row on :attr:`padding_side` into ``(B, T)`` tensors."""
        rows = encoded["input_ids"]
        width = max((len(r) for r in rows), default=0)
        pad_id = self.pad_token_id if self.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if not row:
                continue
            span = slice(width - len(row), width) if self.padding_side == "left" else slice(0, len(row))
            ids[i, span] = torch.tensor(row, dtype=torch.long)
            mask[i, span] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def batch_decode(self, rows: Any, skip_special_tokens: bool = False) -> list[str]:
        """The text of each row of ids (a tensor or lists)."""
        lists = rows.tolist() if isinstance(rows, torch.Tensor) else [list(r) for r in rows]
        if len(lists) <= _ONE_BY_ONE:
            return [str(self._tok.decode(r, skip_special_tokens=skip_special_tokens)) for r in lists]
        return list(self._tok.decode_batch(lists, skip_special_tokens=skip_special_tokens))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """The text of one row of ids."""
        return str(self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens))


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _token_text(value: object) -> str | None:
    """A special token as ``tokenizer_config.json`` writes it: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None
