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

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import torch
from torch.nn import functional

from tools.edit._family import get_module
from tools.edit._hooks import Trace
from tools.edit._preserve import Preservation
from tools.edit._request import EditRequest, target_text
from tools.edit._upper import Below, cache_below, fused_activations, skipping_below
from tools.errors import InvalidEditError

__all__ = [
    "ModelAndTokenizer",
    "ValueOptions",
    "ValueResult",
    "answer_ends",
    "compute_values",
    "context_templates",
    "outputs_at_subject",
    "sample_texts",
    "subject_keys",
]


class ModelAndTokenizer(Protocol):
    """What these helpers need of a language model (``LocalLanguageModel`` has both)."""

    @property
    def model(self) -> Any: ...

    @property
    def tokenizer(self) -> Any: ...


logger = logging.getLogger(__name__)
_PROGRESS = 25  # steps between progress log lines
_RECHECK = 5  # steps between re-evaluations of chunks whose requests have all converged
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
    stop_after_target: bool = False  # also fit the token that ends the old answer (see answer_ends)
    skip_below: bool = True  # run the blocks up to the edited one once, not at every step (bit-identical)
    fused_activation: bool = False  # torch's fused tanh GELU for GPT-2's gelu_new (rounding differs)


class ValueHyperParams(Protocol):
    """The ``v_*`` fields ROME's and MEMIT's hyperparameters share (names of the reference implementation)."""

    @property
    def v_num_grad_steps(self) -> int: ...
    @property
    def v_lr(self) -> float: ...
    @property
    def v_weight_decay(self) -> float: ...
    @property
    def clamp_norm_factor(self) -> float: ...
    @property
    def kl_factor(self) -> float: ...
    @property
    def v_early_stop_loss(self) -> float: ...
    @property
    def v_stop_after_target(self) -> bool: ...


def value_options_of(hp: ValueHyperParams) -> ValueOptions:
    """The :class:`ValueOptions` of a method's hyperparameters."""
    return ValueOptions(
        steps=hp.v_num_grad_steps,
        lr=hp.v_lr,
        weight_decay=hp.v_weight_decay,
        clamp_norm_factor=hp.clamp_norm_factor,
        kl_factor=hp.kl_factor,
        early_stop_loss=hp.v_early_stop_loss,
        stop_after_target=hp.v_stop_after_target,
    )


@dataclass(frozen=True)
class ValueResult:
    """Per request: the module output before (``init``) and the optimised one (``target = init + delta``)."""

    init: torch.Tensor  # (R, d)
    target: torch.Tensor  # (R, d)
    nll: tuple[float, ...]  # final mean NLL per target token, per request


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


@dataclass(frozen=True)
class _Chunk:
    """The prompts of some requests, ready for the value optimisation's forward passes."""

    batch: _Batch
    requests: torch.Tensor  # (r,) global indices of the chunk's requests
    owners: torch.Tensor  # (N,) global request index of each row
    n_tpl: int  # templated prompts per request (the KL prompts follow them)
    label_rows: torch.Tensor  # (M,) row of each target token
    gold: torch.Tensor  # (M,) the target token ids
    pick_rows: torch.Tensor  # (M + r,) rows whose logits are needed (target tokens, then the KL prompts)
    pick_pos: torch.Tensor  # (M + r,) their positions
    n_tokens: torch.Tensor  # (r * n_tpl,) target tokens per templated prompt


@torch.no_grad()
def answer_ends(lm: ModelAndTokenizer, prompts: Sequence[str], answers: Sequence[str | None]) -> list[int | None]:
    """The token the model puts after each ``prompt + answer`` when it ends the answer there, else ``None``.

    Used with the old answer: the edited model should close the new answer the way it closed the old one
    (``"... is named Digna Baltus."``, not ``"Digna Baltusdot"``). A token counts as an ending when it is the
    end-of-text token or its text starts with something other than a letter or digit (``"."``, ``","``,
    a newline); a word-continuing token gives ``None``.
    """
    out: list[int | None] = [None] * len(prompts)
    rows = [i for i, a in enumerate(answers) if a]
    if not rows:
        return out
    tok = lm.tokenizer
    batch = _encode(
        lm, [prompts[i] + target_text(prompts[i], answers[i] or "") for i in rows], [0] * len(rows), [None] * len(rows)
    )
    logits = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # (n, T, V)
    last = batch.attention_mask.sum(dim=1) - 1  # (n,)
    best = _at_lookup(logits, last).argmax(dim=-1).tolist()  # (n,)
    for i, token in zip(rows, best, strict=True):
        text = tok.decode([token]).lstrip(" ")
        if token == tok.eos_token_id or (text and not text[0].isalnum()):
            out[i] = int(token)
    return out


def _chunk(
    lm: ModelAndTokenizer, requests: Sequence[EditRequest], ids: range, templates: Sequence[str], stop: bool
) -> _Chunk:
    texts: list[str] = []
    chars: list[int] = []
    targets: list[str | None] = []
    owner: list[int] = []
    for r in ids:
        for template in templates:
            text, char = _subject_last_char(template, requests[r].prompt, requests[r].subject)
            texts.append(text)
            chars.append(char)
            targets.append(requests[r].target_new)
            owner.append(r)
    ends = answer_ends(lm, texts, [requests[r].target_old for r in owner]) if stop else [None] * len(texts)
    for r in ids:  # the KL ("essence") prompts come last
        texts.append(f"{requests[r].subject} is a")
        chars.append(len(requests[r].subject) - 1)
        targets.append(None)
        owner.append(r)
        ends.append(None)
    batch = _encode(lm, texts, chars, targets, ends)
    device = batch.input_ids.device
    n_rw = len(ids) * len(templates)
    mask = batch.labels[:n_rw] != -100  # (n_rw, T)
    label_rows, label_pos = mask.nonzero(as_tuple=True)  # (M,), (M,)
    return _Chunk(
        batch=batch,
        requests=torch.tensor(list(ids), device=device),
        owners=torch.tensor(owner, device=device),
        n_tpl=len(templates),
        label_rows=label_rows,
        gold=batch.labels[:n_rw][label_rows, label_pos],
        pick_rows=torch.cat([label_rows, torch.arange(n_rw, len(texts), device=device)]),
        pick_pos=torch.cat([label_pos, batch.lookup[n_rw:]]),
        n_tokens=mask.sum(dim=1).clamp(min=1),
    )


def _output_edit(
    chunk: _Chunk, delta: torch.Tensor, through: tuple[torch.Tensor, float] | None
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fn(x, out)``: a module's output ``out`` ``(N, T, d)`` (input ``x``) with ``delta`` added: at the
    subject's last token (``through`` is ``None``), or at every position as ``scale * (x @ directionᵀ) @ delta``
    (``through = (direction, scale)``)."""
    if through is None:

        def at_subject(_x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
            shift = torch.zeros_like(out)
            rows = torch.arange(out.shape[0], device=out.device)
            shift[rows, chunk.batch.lookup] = delta[chunk.owners].to(out.dtype)
            return out + shift

        return at_subject
    direction, scale = through

    def along(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        weight = x @ direction.T.to(out.dtype)  # (N, T, R): each edit's response to each key
        return out + scale * (weight @ delta.to(out.dtype))  # (N, T, d)

    return along


@contextmanager
def _shifted(
    model: Any,
    chunk: _Chunk,
    delta: torch.Tensor,
    module_path: str,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None,
) -> Iterator[None]:
    """Hooks adding ``delta`` to module outputs: at the subject's last token of ``module_path`` (no
    ``directions``), or at every position of each ``path`` as ``scale * (x @ directionᵀ) @ delta``."""

    def hook_of(edit: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Any:
        def hook(_module: Any, inputs: tuple[Any, ...], output: Any) -> Any:
            if isinstance(output, tuple):
                return (edit(inputs[0], output[0]), *output[1:])
            return edit(inputs[0], output)

        return hook

    if directions is None:
        hooks = [(module_path, hook_of(_output_edit(chunk, delta, None)))]
    else:
        hooks = [(p, hook_of(_output_edit(chunk, delta, v))) for p, v in directions.items()]
    handles = []
    try:
        for path, hook in hooks:
            handles.append(get_module(model, path).register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _edited_forward(
    model: Any,
    chunk: _Chunk,
    delta: torch.Tensor,
    module_path: str,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None,
    below: Below | None,
) -> AbstractContextManager[None]:
    """The model with ``delta`` applied as :func:`_shifted` does; with ``below`` (cached for ``chunk``, only
    when ``module_path`` is the one module edited) the blocks up to it are not run again (bit-identical)."""
    if below is None:
        return _shifted(model, chunk, delta, module_path, directions)
    through = None if directions is None else directions[module_path]
    return skipping_below(model, below, _output_edit(chunk, delta, through))


def _value_owners(n_req: int, groups: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """Each request's value index and each value's leading request (its first), checked.

    Raises:
        ValueError: ``groups`` does not give each request an index, or leaves one of ``0..G-1`` unused.
    """
    owner_list = list(range(n_req)) if groups is None else [int(g) for g in groups]
    if len(owner_list) != n_req or sorted(set(owner_list)) != list(range(len(set(owner_list)))):
        raise ValueError("compute_values: groups must give each request a value index, using every one of 0..G-1")
    return owner_list, [owner_list.index(g) for g in range(len(set(owner_list)))]


def _chunk_nll(chunk: _Chunk, head: Any, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From one chunk's hidden states ``(N, T, d)``: the mean target NLL per request ``(r,)`` over its
    templates, and the next-token log-probabilities at the KL prompts' subject ``(r, V)``."""
    logp = torch.log_softmax(head(hidden[chunk.pick_rows, chunk.pick_pos]).float(), dim=-1)
    n_gold = len(chunk.gold)
    gold = logp[:n_gold].gather(-1, chunk.gold.unsqueeze(-1)).squeeze(-1)  # (M,)
    per_row = torch.zeros(len(chunk.n_tokens), device=gold.device).index_add(0, chunk.label_rows, -gold)
    nll = (per_row / chunk.n_tokens).view(-1, chunk.n_tpl).mean(dim=1)  # (r,)
    return nll, logp[n_gold:]


def _decay_and_step(
    opt: torch.optim.Optimizer,
    delta: torch.Tensor,
    weight_decay: float,
    init_norm: torch.Tensor,
    max_norm: torch.Tensor,
    active: torch.Tensor,
) -> None:
    """Add the weight-decay term, take the Adam step, clamp each ``delta`` row to ``max_norm`` ``(G, 1)`` and
    put back the rows not ``active`` ``(G,)`` (converged values do not move)."""
    decay = weight_decay * delta.norm(dim=1) / init_norm**2
    (decay * active.float()).sum().backward()
    kept = delta.detach().clone()
    opt.step()
    with torch.no_grad():
        norms = delta.norm(dim=1, keepdim=True)
        delta.mul_(torch.where(norms > max_norm, max_norm / norms, torch.ones_like(norms)))
        delta[~active] = kept[~active]


def compute_values(
    lm: ModelAndTokenizer,
    module_path: str,
    requests: Sequence[EditRequest],
    templates: Sequence[str],
    options: ValueOptions,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None = None,
    chunk_size: int = 16,
    preserve: Preservation | None = None,
    groups: Sequence[int] | None = None,
) -> ValueResult:
    """Optimise, per request, a vector ``delta`` that makes the model say ``target_new``.

    Without ``directions`` (ROME's ``compute_v``, MEMIT's ``compute_z``), ``delta`` is added to
    ``module_path``'s output at the subject's last token. With ``directions`` — ``{path: (D, scale)}``, ``D``
    ``(R, in)`` — the deltas act as the left factor of weight updates ``ΔW_path = scale · deltaᵀ D``: every
    position ``t`` of every prompt gets ``scale · Σ_r (D_r · x_t) delta_r`` at ``path``'s output (``x_t`` its
    input). That is exactly what the updates will do, so the optimised loss is the edited model's own: tokens
    whose keys resemble the subject's (the target's own tokens, the other requests' subjects) are accounted for.

    The loss of request ``r`` is ROME's: mean NLL per token of ``target_new`` after every templated prompt,
    plus ``kl_factor * KL`` between the original and edited next-token distributions at the subject's last
    token of ``"{subject} is a"``, plus ``weight_decay * ||delta|| / ||init||^2``; after each Adam step
    ``||delta||`` is clamped to ``clamp_norm_factor * ||init||``. All requests are optimised together (forward
    passes of ``chunk_size`` requests, gradients accumulated); a request whose NLL is below
    ``early_stop_loss`` is left as it is while it stays there (a chunk of converged requests is re-evaluated
    only every few steps); the optimisation ends when all are.

    With ``options.skip_below`` and one edited module (``module_path``, alone in ``directions`` if given), the
    blocks up to that module run once per chunk and each step runs the blocks above it
    (:mod:`tools.edit._upper`; bit-identical results, full forwards where the shortcut is not exact).

    With ``preserve`` (MEMIT's batches, see :mod:`tools.edit._preserve`) every step also adds its KL term on
    corpus sentences, forwarded through the same hooks, times the number of requests. The term concerns all
    requests at once, so then no request is frozen and every chunk is evaluated at every step (a converged
    request keeps its target loss in the objective); the optimisation still ends when all are converged.

    With ``groups`` (one value index per request, ``0..G-1``, each index's first request leading it) requests
    of one group share one ``delta`` (MEMIT's corpus phrasings of a request): ``directions`` are then ``(G, in)``
    and a group is converged when all its requests are.

    Returns:
        ``init`` (``module_path``'s output at the subject's last token of each group leader's bare prompt) and
        ``target = init + delta``, both ``(G, d)`` float32 (``G = R`` without groups), and the final NLL per
        request.
    """
    if preserve is not None and directions is None:
        raise ValueError("compute_values: preserve needs directions (the term acts through weight updates)")
    if groups is not None and directions is None:
        raise ValueError("compute_values: groups need directions (a shared value acts through weight updates)")
    model = lm.model
    n_req = len(requests)
    owner_list, lead = _value_owners(n_req, groups)
    step = max(1, chunk_size)
    chunks = [
        _chunk(lm, requests, range(lo, min(lo + step, n_req)), templates, options.stop_after_target)
        for lo in range(0, n_req, step)
    ]
    init = outputs_at_subject(lm, module_path, requests)[lead]  # (G, d)
    device = init.device
    owner = torch.tensor(owner_list, device=device)  # (R,) each request's value
    delta = torch.zeros_like(init, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=options.lr)
    init_norm = init.norm(dim=1)  # (G,)
    max_norm = (options.clamp_norm_factor * init_norm).unsqueeze(1)  # (G, 1)
    kl_init: dict[int, torch.Tensor] = {}
    nll_now = torch.zeros(n_req, device=device)
    base, head = _base_and_head(model)
    # per chunk, the blocks up to the edited one, run once (see tools.edit._upper); None: full forwards
    one_module = directions is None or set(directions) == {module_path}
    below: dict[int, Below | None] = {} if options.skip_below and one_module else dict.fromkeys(range(len(chunks)))
    start = time.perf_counter()
    with fused_activations(model) if options.fused_activation else nullcontext():
        for it in range(max(options.steps, 1)):
            if it % _PROGRESS == 0:  # a batch of 100 runs for minutes on a CPU: say how far it is
                worst = float(nll_now.max())
                logger.debug(
                    "compute_values: step %d/%d, worst NLL %.3f, %.0fs",
                    it,
                    options.steps,
                    worst,
                    time.perf_counter() - start,
                )
            opt.zero_grad()
            for c, chunk in enumerate(chunks):
                converged = not bool((nll_now[chunk.requests] >= options.early_stop_loss).any())
                if preserve is None and c in kl_init and it % _RECHECK and converged:
                    continue  # every request of the chunk has converged: look again only every _RECHECK steps
                if c not in below:
                    below[c] = cache_below(model, module_path, chunk.batch.input_ids, chunk.batch.attention_mask)
                with _edited_forward(model, chunk, delta, module_path, directions, below[c]):
                    out = base(input_ids=chunk.batch.input_ids, attention_mask=chunk.batch.attention_mask)
                nll, kl_logp = _chunk_nll(chunk, head, out.last_hidden_state)
                if c not in kl_init:
                    kl_init[c] = kl_logp.detach().clone()
                kl = functional.kl_div(kl_logp, kl_init[c], log_target=True, reduction="none").sum(dim=-1)  # (r,)
                nll_now[chunk.requests] = nll.detach()
                active = (nll.detach() >= options.early_stop_loss).float() if preserve is None else torch.ones_like(nll)
                if bool(active.any()):  # a chunk whose requests have all converged gives no gradient
                    ((nll + options.kl_factor * kl) * active).sum().backward()
            active_rows = (nll_now >= options.early_stop_loss).float()  # (R,)
            active_all = torch.zeros(len(lead), device=device).index_add(0, owner, active_rows) > 0  # (G,)
            if not bool(active_all.any()):
                break
            if preserve is not None:
                edited = partial(_shifted, model, chunks[0], delta, module_path, directions)
                (n_req * preserve.loss(model, edited)).backward()
                active_all = torch.ones_like(active_all)  # every request stays free to move (see above)
            _decay_and_step(opt, delta, options.weight_decay, init_norm, max_norm, active_all)
    return ValueResult(init=init, target=init + delta.detach(), nll=tuple(float(x) for x in nll_now))
