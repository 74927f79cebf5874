"""Shared steps of ROME and MEMIT: context prefixes, keys at the subject's last token, target value optimisation.

* :func:`context_templates` — ``"{}"`` plus a few short texts sampled from the model itself, each followed by
  ``". {}"`` (ROME and MEMIT average keys and fit values over such random prefixes so the edit does not depend
  on the prompt starting the text).
* :func:`subject_keys` — the input of ``mlp_out`` (the key) at the subject's last token, averaged over templates.
* :func:`outputs_at_subject` — a module's output at the subject's last token of each (bare) prompt.
* :func:`compute_values` — ROME's ``compute_v`` / MEMIT's ``compute_z``: a vector added to a module's output at
  the subject's last token, optimised with Adam so the model says ``target_new`` after every prefixed prompt,
  with a KL term keeping the ``"{subject} is a"`` distribution, weight decay, and a norm clamp.

Everything runs under :func:`~tools.edit._protocol.frozen_model`: the model's weights are never optimised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from tools.edit._family import get_module
from tools.edit._hooks import Trace
from tools.edit._request import EditRequest, target_text
from tools.errors import InvalidEditError

__all__ = [
    "ModelAndTokenizer",
    "ValueOptions",
    "ValueResult",
    "compute_values",
    "context_templates",
    "outputs_at_subject",
    "subject_keys",
]



class ModelAndTokenizer(Protocol):
    """What these helpers need of a language model (``LocalLanguageModel`` has both)."""

    @property
    def model(self) -> Any: ...

    @property
    def tokenizer(self) -> Any: ...


_STARTERS = ("The", "Therefore", "Because", "I", "You", "In", "It", "When", "This", "However")


@dataclass(frozen=True)
class ValueOptions:
    """How :func:`compute_values` optimises (ROME's ``v_*`` hyperparameters)."""

    steps: int  # Adam steps
    lr: float  # Adam learning rate
    weight_decay: float  # weight of ||delta|| / ||init||^2
    clamp_norm_factor: float  # ||delta|| <= factor * ||init||
    kl_factor: float  # weight of KL(original || edited) on the "{subject} is a" prompt
    early_stop_loss: float = 5e-2  # a request stops once its target NLL (per token) is below this


@dataclass(frozen=True)
class ValueResult:
    """Per request: the module output before (``init``) and the optimised one (``target = init + delta``)."""

    init: torch.Tensor  # (R, d)
    target: torch.Tensor  # (R, d)
    nll: tuple[float, ...]  # final mean NLL per target token, per request


def context_templates(lm: ModelAndTokenizer, count: int, length: int, seed: int = 0) -> tuple[str, ...]:
    """``"{}"`` and ``count`` templates ``"<text sampled from the model>. {}"`` of ``length`` new tokens.

    Sampling is top-k (k=5) with a private seeded generator, so templates are reproducible and the global RNG is
    untouched. Braces in sampled text are replaced by spaces.
    """
    if count <= 0:
        return ("{}",)
    model, tok = lm.model, lm.tokenizer
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    starters = [_STARTERS[i % len(_STARTERS)] for i in range(count)]
    rows = [tok(s, add_special_tokens=False)["input_ids"] for s in starters]
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((count, width), pad, dtype=torch.long)  # left padded
    mask = torch.zeros((count, width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, width - len(row) :] = torch.tensor(row)
        mask[b, width - len(row) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    with torch.no_grad():
        for _ in range(length):
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].float()  # (n, V)
            top = logits.topk(5, dim=-1)
            probs = torch.softmax(top.values, dim=-1).cpu()
            choice = torch.multinomial(probs, 1, generator=gen).to(device)  # (n, 1)
            nxt = top.indices.gather(-1, choice)
            ids = torch.cat([ids, nxt], dim=1)
            mask = torch.cat([mask, torch.ones_like(nxt)], dim=1)
    out = ["{}"]
    for b in range(count):
        text = tok.decode(ids[b][mask[b].bool()].tolist(), skip_special_tokens=True)
        text = " ".join(text.replace("{", " ").replace("}", " ").split())
        out.append(text + ". {}")
    return tuple(out)


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
    lm: ModelAndTokenizer, texts: Sequence[str], subject_chars: Sequence[int], targets: Sequence[str | None]
) -> _Batch:
    """Right-padded ids of ``text + target``; labels mark the target tokens at the positions predicting them."""
    tok = lm.tokenizer
    device = next(lm.model.parameters()).device
    rows, labels_at, lookup = [], [], []
    for text, char, target in zip(texts, subject_chars, targets, strict=True):
        p_ids = list(tok(text, add_special_tokens=False)["input_ids"])
        t_ids = list(tok(target_text(text, target), add_special_tokens=False)["input_ids"]) if target else []
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
        with Trace(lm.model, module_path, retain_input=want_input, retain_output=not want_input) as trace:
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


def compute_values(
    lm: ModelAndTokenizer,
    module_path: str,
    requests: Sequence[EditRequest],
    templates: Sequence[str],
    options: ValueOptions,
    direction: torch.Tensor | None = None,
) -> ValueResult:
    """Optimise, per request, a vector ``delta`` added to ``module_path``'s output at the subject's last token.

    With ``direction`` ``(R, in)`` (ROME's ``C⁻¹k*`` scaled so that it gives 1 on the bare prompt's key),
    ``delta`` is instead added at *every* position ``t`` with weight ``direction · k_t`` (``k_t`` the module's
    input there): exactly what the rank-one update ``ΔW = delta directionᵀ`` will do, so the optimised loss is
    the edited model's own (tokens whose keys overlap the subject's, such as the target's, are accounted for).

    The loss of request ``r`` is ROME's: mean NLL per token of ``target_new`` after every templated prompt,
    plus ``kl_factor * KL`` between the original and edited next-token distributions at the subject's last
    token of ``"{subject} is a"``, plus ``weight_decay * ||delta|| / ||init||^2``; after each Adam step
    ``||delta||`` is clamped to ``clamp_norm_factor * ||init||``. Requests are optimised together (the loss is
    a sum of independent terms and Adam is element-wise, so each row follows its own trajectory); a request
    whose NLL is below ``early_stop_loss`` is frozen.

    Returns:
        ``init`` (the output at the bare prompt) and ``target = init + delta``, both ``(R, d)`` float32.
    """
    model = lm.model
    n_req, n_tpl = len(requests), len(templates)
    texts, chars, targets, owner = [], [], [], []
    for r, req in enumerate(requests):
        for template in templates:
            text, char = _subject_last_char(template, req.prompt, req.subject)
            texts.append(text)
            chars.append(char)
            targets.append(req.target_new)
            owner.append(r)
    for r, req in enumerate(requests):  # the KL ("essence") prompts come last
        texts.append(f"{req.subject} is a")
        chars.append(len(req.subject) - 1)
        targets.append(None)
        owner.append(r)
    batch = _encode(lm, texts, chars, targets)
    device = batch.input_ids.device
    rows = torch.arange(len(texts), device=device)
    owners = torch.tensor(owner, device=device)
    n_rw = n_req * n_tpl
    init = outputs_at_subject(lm, module_path, requests)  # (R, d)
    d = init.shape[1]
    delta = torch.zeros(n_req, d, device=device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=options.lr)
    max_norm = options.clamp_norm_factor * init.norm(dim=1, keepdim=True)  # (R, 1)
    done = torch.zeros(n_req, dtype=torch.bool, device=device)
    mask = batch.labels[:n_rw] != -100  # (n_rw, T)
    n_tokens = mask.sum(dim=1).clamp(min=1)
    kl_init: torch.Tensor | None = None
    per_req = torch.zeros(n_req, device=device)

    # logits are needed only where targets are predicted and at the KL prompts' lookup token
    label_rows, label_pos = mask.nonzero(as_tuple=True)  # (M,), (M,)
    gold_ids = batch.labels[:n_rw][label_rows, label_pos]  # (M,)
    kl_rows = torch.arange(n_rw, len(texts), device=device)
    pick_rows = torch.cat([label_rows, kl_rows])
    pick_pos = torch.cat([label_pos, batch.lookup[n_rw:]])
    base, head = _base_and_head(model)

    def add_delta(_module: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        out = output[0] if isinstance(output, tuple) else output
        if direction is None:
            shift = torch.zeros_like(out)
            shift[rows, batch.lookup] = delta[owners].to(out.dtype)
        else:
            weight = (inputs[0] * direction[owners].to(out.dtype)[:, None, :]).sum(-1)  # (N, T)
            shift = weight[:, :, None] * delta[owners].to(out.dtype)[:, None, :]  # (N, T, d)
        return (out + shift, *output[1:]) if isinstance(output, tuple) else out + shift

    module = get_module(model, module_path)
    for _ in range(max(options.steps, 1)):
        handle = module.register_forward_hook(add_delta)
        try:
            hidden = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        finally:
            handle.remove()
        logp = torch.log_softmax(head(hidden[pick_rows, pick_pos]).float(), dim=-1)  # (M + R, V)
        gold = logp[: len(label_rows)].gather(-1, gold_ids.unsqueeze(-1)).squeeze(-1)  # (M,)
        nll_rows = torch.zeros(n_rw, device=device).index_add(0, label_rows, -gold) / n_tokens  # (n_rw,)
        nll = nll_rows.view(n_req, n_tpl).mean(dim=1)  # (R,)
        kl_logp = logp[len(label_rows) :]  # (R, V)
        if kl_init is None:
            kl_init = kl_logp.detach().clone()
        kl = F.kl_div(kl_logp, kl_init, log_target=True, reduction="none").sum(dim=-1)  # (R,)
        decay = options.weight_decay * delta.norm(dim=1) / init.norm(dim=1) ** 2
        per_req = nll.detach()
        done = done | (per_req < options.early_stop_loss)
        if bool(done.all()):
            break
        loss = ((nll + options.kl_factor * kl + decay) * (~done).float()).sum()
        opt.zero_grad()
        loss.backward()
        kept = delta.detach().clone()
        opt.step()
        with torch.no_grad():
            norms = delta.norm(dim=1, keepdim=True)
            delta.mul_(torch.where(norms > max_norm, max_norm / norms, torch.ones_like(norms)))
            delta[done] = kept[done]
    target = init + delta.detach()
    return ValueResult(init=init, target=target, nll=tuple(float(x) for x in per_req))
