"""Edit requests and their tokenization: where the subject ends, which tokens are the target.

An :class:`EditRequest` is the unit every editor consumes: "after ``prompt`` (which mentions ``subject``), the
model should say ``target_new``". Prompts are literal model input (a cloze such as ``"Alibaba's CEO is"``, or a
question already wrapped in the model's prompt format); the target follows after one space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tools.errors import InvalidEditError
from tools.lm import context_length

__all__ = [
    "CONTEXT_RESERVE",
    "EditRequest",
    "EncodedRequest",
    "check_fits_context",
    "context_length",
    "encode_requests",
    "subject_last_token",
    "target_text",
]


@dataclass(frozen=True)
class EditRequest:
    """One fact to write into the model.

    Args:
        prompt: model input that mentions ``subject`` and is completed by the target (e.g. ``"Alibaba's CEO is"``).
        subject: the entity whose fact changes; must occur in ``prompt``.
        target_new: the new completion (e.g. ``"Takahiro Hachigō"``).
        target_old: the completion being replaced, when known (used by evaluation and some losses).
        relation: the relation id, when known (e.g. ``"company_ceo"``).

    Raises:
        InvalidEditError: empty prompt, subject or target, or a subject that does not occur in the prompt.
    """

    prompt: str
    subject: str
    target_new: str
    target_old: str | None = None
    relation: str | None = None

    def __post_init__(self) -> None:
        for name in ("prompt", "subject", "target_new"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidEditError(f"edit request: {name} must be a non-empty string, got {value!r}")
        if self.subject not in self.prompt:
            raise InvalidEditError(f"edit request: subject {self.subject!r} does not occur in prompt {self.prompt!r}")
        if self.target_old is not None and self.target_old.strip() == self.target_new.strip():
            raise InvalidEditError(f"edit request: target_new equals target_old ({self.target_new!r})")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the journal's record of the request)."""
        return {
            "prompt": self.prompt,
            "subject": self.subject,
            "target_new": self.target_new,
            "target_old": self.target_old,
            "relation": self.relation,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EditRequest:
        """Inverse of :meth:`to_json` (validates again)."""
        return cls(**data)


def target_text(prompt: str, target: str) -> str:
    """The continuation as the model should produce it: one space between prompt and target."""
    target = target.strip()
    return target if prompt.endswith((" ", "\n")) else " " + target


CONTEXT_RESERVE = 32
"""Positions kept free beyond ``prompt + target + end``: editors prepend short context prefixes (ROME, MEMIT)."""


def check_fits_context(tokenizer: Any, model: Any, requests: Sequence[EditRequest]) -> None:
    """Refuse requests whose ``prompt + target`` cannot fit the model's positions (before any work).

    A target of thousands of characters would otherwise index past the position embeddings deep inside the
    forward pass (a raw ``IndexError``).

    Raises:
        InvalidEditError: ``prompt + target`` plus :data:`CONTEXT_RESERVE` exceeds the context length.
    """
    limit = context_length(model)
    if limit is None:
        return
    for req in requests:
        for goal in (req.target_new, req.target_old):
            if not goal:
                continue
            n = len(tokenizer(req.prompt, add_special_tokens=False)["input_ids"])
            n += len(tokenizer(target_text(req.prompt, goal), add_special_tokens=False)["input_ids"]) + 1
            if n + CONTEXT_RESERVE > limit:
                raise InvalidEditError(
                    f"edit request: prompt and target take {n} tokens; this model reads at most {limit} "
                    f"({limit - CONTEXT_RESERVE} for an edit): shorten the target ({len(goal)} characters)"
                )


def subject_last_token(tokenizer: Any, prompt: str, subject: str) -> int:
    """Index of the token holding the last character of ``subject``'s first occurrence in ``prompt``.

    Raises:
        InvalidEditError: the subject does not occur in the prompt.
    """
    start = prompt.find(subject)
    if start < 0:
        raise InvalidEditError(f"subject {subject!r} does not occur in prompt {prompt!r}")
    last_char = start + len(subject) - 1
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    for i, (lo, hi) in enumerate(enc["offset_mapping"]):
        if lo <= last_char < hi:
            return i
    # byte-level tokenizers can give empty spans for some characters: fall back to the last token before it
    return max(i for i, (lo, _) in enumerate(enc["offset_mapping"]) if lo <= last_char)


@dataclass(frozen=True)
class EncodedRequest:
    """A batch of requests as tensors for teacher forcing ``prompt + target``.

    Shapes: ``input_ids`` and ``attention_mask`` are ``(B, T)`` (right padded); ``labels`` is ``(B, T)`` with
    ``-100`` everywhere except the target tokens (each label sits at the position that *predicts* it, i.e. the
    usual next-token shift is already applied: ``labels[b, t]`` is the token expected after position ``t``).
    ``prompt_last`` ``(B,)`` is the last prompt position; ``subject_last`` ``(B,)`` the subject's last token.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    prompt_last: torch.Tensor
    subject_last: torch.Tensor
    target_ids: tuple[tuple[int, ...], ...]


def encode_requests(
    tokenizer: Any,
    requests: Sequence[EditRequest],
    device: torch.device,
    *,
    target: str = "new",
    ends: Sequence[int | None] | None = None,
) -> EncodedRequest:
    """Tokenize ``prompt + target`` for each request (``target`` is ``"new"`` or ``"old"``).

    ``ends`` (one per request, optional): a token appended after the target as one more label, e.g. the full
    stop that closes the answer (see :func:`tools.edit._values.answer_ends`); ``None`` appends nothing.
    """
    rows: list[list[int]] = []
    prompt_last: list[int] = []
    targets: list[tuple[int, ...]] = []
    if ends is not None and len(ends) != len(requests):
        raise ValueError(f"encode_requests: {len(ends)} ends for {len(requests)} requests")
    for i, req in enumerate(requests):
        goal = req.target_new if target == "new" else (req.target_old or "")
        p_ids = tokenizer(req.prompt, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(target_text(req.prompt, goal), add_special_tokens=False)["input_ids"]
        if not t_ids:
            raise InvalidEditError(f"edit request: target {goal!r} encodes to no tokens")
        end = ends[i] if ends is not None else None
        t_ids = list(t_ids) + ([end] if end is not None else [])
        rows.append(list(p_ids) + list(t_ids))
        prompt_last.append(len(p_ids) - 1)
        targets.append(tuple(t_ids))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for b, (row, last, t_ids) in enumerate(zip(rows, prompt_last, targets, strict=True)):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
        labels[b, last : last + len(t_ids)] = torch.tensor(t_ids)
    subj = [subject_last_token(tokenizer, r.prompt, r.subject) for r in requests]
    return EncodedRequest(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        labels=labels.to(device),
        prompt_last=torch.tensor(prompt_last, device=device),
        subject_last=torch.tensor(subj, device=device),
        target_ids=tuple(targets),
    )
