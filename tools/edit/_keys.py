"""Shared steps of ROME and MEMIT: context prefixes and keys at the subject's last token (the value
optimisation that follows them is :mod:`tools.edit._values`).

* :func:`context_templates` — ``"{}"`` plus a few short texts sampled from the model itself, each followed by
  ``". {}"`` (ROME and MEMIT average keys and fit values over such random prefixes so the edit does not depend
  on the prompt starting the text).
* :func:`subject_keys` — the input of ``mlp_out`` (the key) at the subject's last token, averaged over templates;
  :func:`subject_span_keys` — the same input averaged over all of the subject's tokens (ROME's ``key_span``).
* :func:`outputs_at_subject` — a module's output at the subject's last token of each (bare) prompt.

Everything runs under :func:`~tools.edit._protocol.frozen_model`: the model's weights are never optimised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from tools.edit._hooks import Trace
from tools.edit._request import EditRequest, target_text
from tools.edit._upper import stopping_after
from tools.errors import InvalidEditError

__all__ = [
    "ModelAndTokenizer",
    "context_templates",
    "outputs_at_subject",
    "sample_texts",
    "subject_keys",
    "subject_span_keys",
]


class ModelAndTokenizer(Protocol):
    """What these helpers need of a language model (``LocalLanguageModel`` has both)."""

    @property
    def model(self) -> Any: ...

    @property
    def tokenizer(self) -> Any: ...


logger = logging.getLogger(__name__)
_STARTERS = ("The", "Therefore", "Because", "I", "You", "In", "It", "When", "This", "However")


def context_templates(
    lm: ModelAndTokenizer, count: int, length: int, seed: int = 0, *, question: bool = False
) -> tuple[str, ...]:
    """``"{}"``, ``count`` templates ``"<text sampled from the model>. {}"`` of ``length`` new tokens, and with
    ``question`` the model's closed-book question format around the prompt (``"Q: {}\nA:"``, when the model
    has a ``prompt_format``): paraphrases are often asked as questions, and the prompt format is part of the
    model, not of any dataset.

    The texts come from :func:`sample_texts`; braces in them are replaced by spaces.
    """
    fmt = getattr(lm, "prompt_format", None)
    extra: tuple[str, ...] = (fmt.question("{}"),) if question and fmt is not None else ()
    prefixes = sample_texts(lm, count, length, seed)
    return ("{}", *(" ".join(p.replace("{", " ").replace("}", " ").split()) + ". {}" for p in prefixes), *extra)


@torch.no_grad()
def sample_texts(lm: ModelAndTokenizer, count: int, length: int, seed: int = 0) -> list[str]:
    """``count`` texts of ``length`` tokens sampled from the model after short common openings ("The", ...).

    Sampling is top-k (k=5) with a private seeded generator: reproducible, and the global RNG is untouched.
    """
    if count <= 0:
        return []
    model, tok = lm.model, lm.tokenizer
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    starters = [_STARTERS[i % len(_STARTERS)] for i in range(count)]
    rows = [tok(s, add_special_tokens=False)["input_ids"] for s in starters]
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((count, width), pad, dtype=torch.long)  # (n, T) left padded
    mask = torch.zeros((count, width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, width - len(row) :] = torch.tensor(row)
        mask[b, width - len(row) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    for _ in range(length):
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].float()  # (n, V)
        top = logits.topk(5, dim=-1)
        choice = torch.multinomial(torch.softmax(top.values, dim=-1).cpu(), 1, generator=gen).to(device)  # (n, 1)
        nxt = top.indices.gather(-1, choice)
        ids = torch.cat([ids, nxt], dim=1)
        mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
    return [tok.decode(ids[b][mask[b].bool()].tolist(), skip_special_tokens=True).strip() for b in range(count)]


def _token_at_char(tokenizer: Any, text: str, char: int) -> int:
    """Index of the token holding character ``char`` of ``text``."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    for i, (lo, hi) in enumerate(offsets):
        if lo <= char < hi:
            return i
    return max(i for i, (lo, _) in enumerate(offsets) if lo <= char)


def _subject_last_char(template: str, prompt: str, subject: str) -> tuple[str, int]:
    """The templated prompt and the index of the subject's last character inside its prompt part."""
    head = template.split("{}")[0]
    start = prompt.find(subject)
    if start < 0:
        raise InvalidEditError(f"subject {subject!r} does not occur in prompt {prompt!r}")
    return template.format(prompt), len(head) + start + len(subject) - 1


@dataclass(frozen=True)
class _Batch:
    input_ids: torch.Tensor  # (N, T) right padded
    attention_mask: torch.Tensor  # (N, T)
    lookup: torch.Tensor  # (N,) subject's last token
    labels: torch.Tensor  # (N, T) shifted targets or -100


def _encode(
    lm: ModelAndTokenizer,
    texts: Sequence[str],
    subject_chars: Sequence[int],
    targets: Sequence[str | None],
    ends: Sequence[int | None] | None = None,
) -> _Batch:
    """Right-padded ids of ``text + target (+ end token)``; labels mark the target tokens (and the end token)
    at the positions predicting them."""
    tok = lm.tokenizer
    device = next(lm.model.parameters()).device
    rows, labels_at, lookup = [], [], []
    for i, (text, char, target) in enumerate(zip(texts, subject_chars, targets, strict=True)):
        p_ids = list(tok(text, add_special_tokens=False)["input_ids"])
        t_ids = list(tok(target_text(text, target), add_special_tokens=False)["input_ids"]) if target else []
        end = ends[i] if ends is not None else None
        if t_ids and end is not None:
            t_ids.append(end)
        rows.append(p_ids + t_ids)
        labels_at.append((len(p_ids) - 1, t_ids))
        lookup.append(_token_at_char(tok, text, char))
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for b, (row, (last, t_ids)) in enumerate(zip(rows, labels_at, strict=True)):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
        if t_ids:
            labels[b, last : last + len(t_ids)] = torch.tensor(t_ids)
    return _Batch(ids.to(device), mask.to(device), torch.tensor(lookup, device=device), labels.to(device))


def _at_lookup(tensor: torch.Tensor, lookup: torch.Tensor) -> torch.Tensor:
    """``tensor[b, lookup[b]]`` for every row: ``(N, T, D)`` -> ``(N, D)``."""
    return tensor[torch.arange(tensor.shape[0], device=tensor.device), lookup]


@torch.no_grad()
def subject_keys(
    lm: ModelAndTokenizer,
    module_path: str,
    requests: Sequence[EditRequest],
    templates: Sequence[str],
    batch_size: int = 256,
) -> torch.Tensor:
    """The input of ``module_path`` at the subject's last token in each templated prompt: ``(R, n_templates, in)``."""
    texts, chars = [], []
    for req in requests:
        for template in templates:
            text, char = _subject_last_char(template, req.prompt, req.subject)
            texts.append(text)
            chars.append(char)
    keys = _collect(lm, module_path, texts, chars, batch_size, want_input=True)  # (R * n_templates, in)
    return keys.view(len(requests), len(templates), -1)


@torch.no_grad()
def subject_span_keys(
    lm: ModelAndTokenizer,
    module_path: str,
    requests: Sequence[EditRequest],
    templates: Sequence[str],
    batch_size: int = 256,
) -> torch.Tensor:
    """The input of ``module_path`` averaged over the subject's tokens (first to last) in each templated prompt:
    ``(R, n_templates, in)``; a one-token subject gives :func:`subject_keys`' key."""
    texts, lasts, firsts = [], [], []
    for req in requests:
        for template in templates:
            text, last = _subject_last_char(template, req.prompt, req.subject)
            texts.append(text)
            lasts.append(last)
            firsts.append(last - len(req.subject) + 1)
    out = []
    for lo in range(0, len(texts), batch_size):
        part = texts[lo : lo + batch_size]
        batch = _encode(lm, part, lasts[lo : lo + batch_size], [None] * len(part))
        trace = Trace(lm.model, module_path, retain_input=True, retain_output=False)
        with trace, stopping_after(lm.model, module_path):
            lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        seen = trace.input
        assert seen is not None  # the hook ran
        for b, text in enumerate(part):
            first = _token_at_char(lm.tokenizer, text, firsts[lo + b])
            out.append(seen[b, first : int(batch.lookup[b]) + 1].float().mean(dim=0))  # (in,)
    return torch.stack(out).view(len(requests), len(templates), -1)


@torch.no_grad()
def outputs_at_subject(
    lm: ModelAndTokenizer, module_path: str, requests: Sequence[EditRequest], batch_size: int = 256
) -> torch.Tensor:
    """The output of ``module_path`` at the subject's last token of each bare prompt: ``(R, out)`` float32."""
    texts, chars = [], []
    for req in requests:
        text, char = _subject_last_char("{}", req.prompt, req.subject)
        texts.append(text)
        chars.append(char)
    return _collect(lm, module_path, texts, chars, batch_size, want_input=False)


def _collect(
    lm: ModelAndTokenizer,
    module_path: str,
    texts: Sequence[str],
    chars: Sequence[int],
    batch_size: int,
    *,
    want_input: bool,
) -> torch.Tensor:
    out = []
    for lo in range(0, len(texts), batch_size):
        part = texts[lo : lo + batch_size]
        batch = _encode(lm, part, chars[lo : lo + batch_size], [None] * len(part))
        trace = Trace(lm.model, module_path, retain_input=want_input, retain_output=not want_input)
        with trace, stopping_after(lm.model, module_path):  # nothing above the module (nor the LM head) runs
            lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        seen = trace.input if want_input else trace.output
        assert seen is not None  # the hook ran
        out.append(_at_lookup(seen, batch.lookup).float())
    return torch.cat(out, dim=0)


def _base_and_head(model: Any) -> tuple[Any, Any]:
    """The decoder without its LM head (returns final-norm hidden states) and the head itself."""
    head = model.get_output_embeddings()
    base = getattr(model, "base_model", None)
    if head is None or base is None or base is model:
        raise InvalidEditError("the model exposes no separate decoder and output embeddings")
    return base, head
