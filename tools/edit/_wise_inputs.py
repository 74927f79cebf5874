"""The inputs of one WISE edit: the prompt's variants, and the module inputs every training stage reads.

The in-scope positions are the subject's last token of the edit prompt and of its variants: there the side
memory rewrites what the model recalls about the subject (as ROME's edited MLP does), so paraphrases that
mention the subject are routed to it too. Variants are built from the request alone: the prompt, question forms
of it wrapped in the model's prompt format ("Alibaba's CEO is" -> "Q: Who is Alibaba's CEO?\\nA:"), and each of
those after short random prefixes sampled from the model (as ROME's context templates are). Irrelevant inputs are
corpus sentences that do not mention the subject, the variants' text around the subject, and (hard ones) the
prompt's forms about other names.

The module input at the edited layer does not depend on the module's own output, so one clean pass
(:func:`gather_inputs`) gives every input the stages of :mod:`tools.edit._wise_train` use, as a
:class:`ShardInputs`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from tools.edit._hooks import Trace
from tools.edit._request import EditRequest, EncodedRequest, encode_requests
from tools.edit._values import answer_ends
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = [
    "STOP_NLL",
    "ShardInputs",
    "TrainSettings",
    "gather_inputs",
    "prompt_forms",
    "question_forms",
    "swapped",
    "variants",
]

_COPULAS = ("is", "are", "was", "were")
_PREFIX_SEEDS = ("The", "Therefore", "Because", "I", "You", "In", "A", "It")


STOP_NLL = 0.05  # stage 1's default stop: every target token has probability > ~0.95


@dataclass(frozen=True)
class TrainSettings:
    """What :func:`~tools.edit._wise_train.train_shard` needs from the hyperparameters.

    See :class:`~tools.edit._wise_settings.WiseHyperParams` for each field.
    """

    v_steps: int
    v_lr: float
    value_norm: float
    quiet: float
    damping: float
    keep: float
    ft_steps: int
    ft_lr: float
    margin_steps: int
    n_mined: int
    low: float
    high: float
    margin_weight: float
    n_irrelevant: int
    n_swaps: int
    hard: float
    n_prefixes: int
    questions: bool
    seed: int
    stop_after_target: bool = True
    v_optimizer: str = "adam"  # stage 1's step rule: "adam" or "lbfgs_capped" (tools.edit._value_lbfgs._capped)
    v_stop_nll: float = STOP_NLL  # stage 1 stops once every target token's NLL is below this


def question_forms(prompt: str) -> list[str]:
    """Questions asking what completes ``prompt``, built from the prompt's words alone."""
    words = prompt.rstrip().split(" ")
    if len(words) > 1 and words[-1].lower() in _COPULAS:
        rest = " ".join(words[:-1])
        return [f"Who {words[-1]} {rest}?", f"What {words[-1]} {rest}?"]
    return [f"{prompt.rstrip()} what?"]


@torch.no_grad()
def _sample_prefixes(model: LocalLanguageModel, n: int, seed: int, length: int = 6) -> list[str]:
    """``n`` short texts sampled from the model after generic one-word seeds (each ending with ". ")."""
    net, tok = model.model, model.tokenizer
    device = next(net.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        ids = tok(_PREFIX_SEEDS[i % len(_PREFIX_SEEDS)], return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = ids.to(device)
        for _ in range(length):
            probs = torch.softmax(net(input_ids=ids).logits[0, -1].float().cpu(), dim=-1)
            nxt = torch.multinomial(probs, 1, generator=gen)
            ids = torch.cat([ids, nxt.to(device)[None]], dim=1)
        text = tok.decode(ids[0], skip_special_tokens=True).replace("\n", " ").strip()
        out.append(text.rstrip(".") + ". ")
    return out


def prompt_forms(model: LocalLanguageModel, req: EditRequest, settings: TrainSettings) -> list[str]:
    """The edit prompt and (if enabled) its question forms in the model's prompt format."""
    forms = [req.prompt]
    if settings.questions:
        forms += [model.prompt_format.question(q) for q in question_forms(req.prompt)]
    return forms


def variants(model: LocalLanguageModel, req: EditRequest, settings: TrainSettings) -> list[EditRequest]:
    """The edit prompt, its question forms, and all of them after random prefixes (the prompt comes first)."""
    forms = prompt_forms(model, req, settings)
    prefixes = _sample_prefixes(model, settings.n_prefixes, settings.seed) if settings.n_prefixes > 0 else []
    texts = forms + [p + f for p in prefixes for f in forms]
    return [EditRequest(t, req.subject, req.target_new) for t in texts]


def _irrelevant(corpus: Sequence[str], requests: Sequence[EditRequest], n: int, seed: int) -> list[str]:
    """``n`` corpus sentences that mention none of the subjects (a choice seeded by the requests)."""
    subjects = [r.subject for r in requests]
    pool = [s for s in corpus if s.strip() and not any(subj in s for subj in subjects)]
    if not pool:
        raise InvalidEditError("wise: the corpus has no sentence without the edited subject(s)")
    rng = random.Random(_seed_of(requests, seed))
    return rng.sample(pool, min(n, len(pool)))


def _names(corpus: Sequence[str], n: int, rng: random.Random, avoid: Sequence[str]) -> list[str]:
    """``n`` spans of one to three words starting with a capital letter, from random corpus sentences."""
    out: list[str] = []
    for _ in range(20 * n):
        if len(out) == n:
            break
        words = rng.choice(corpus).split()
        starts = [i for i, w in enumerate(words) if w[:1].isupper()]
        if not starts:
            continue
        i = rng.choice(starts)
        span = " ".join(words[i : i + rng.randint(1, 3)]).strip(".,;:!?\"'()")
        if span and not any(span in a or a in span for a in avoid):
            out.append(span)
    return out


def swapped(
    model: LocalLanguageModel, corpus: Sequence[str], req: EditRequest, settings: TrainSettings
) -> list[EditRequest]:
    """The prompt and its question forms about other names (hard irrelevant inputs: same words, other subject).

    The names are capitalised spans of random corpus sentences, so the router learns to key on the subject
    rather than on the relation's wording or on "a name ended here".
    """
    forms = prompt_forms(model, req, settings)
    rng = random.Random(_seed_of([req], settings.seed) + 1)
    names = _names(corpus, settings.n_swaps, rng, [req.subject])
    return [EditRequest(f.replace(req.subject, name, 1), name, req.target_new) for name in names for f in forms]


def _seed_of(requests: Sequence[EditRequest], seed: int) -> int:
    key = "|".join(f"{r.prompt}->{r.target_new}" for r in requests)
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) + seed


def _subject_first(tokenizer: object, prompt: str, subject: str) -> int:
    """Index of the first token overlapping ``subject``'s first occurrence in ``prompt``."""
    start = prompt.find(subject)
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)  # type: ignore[operator]
    return next((i for i, (_, hi) in enumerate(enc["offset_mapping"]) if hi > start), 0)


def _pad_right(tokenizer: object, texts: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask ``(B, T)``, right padded (the tokenizer's own settings are left alone)."""
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]  # type: ignore[operator]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def _inputs(net: nn.Module, path: str, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with Trace(net, path, retain_input=True) as trace:
        net(input_ids=input_ids, attention_mask=mask)
    assert trace.input is not None
    return trace.input.float()  # (B, T, in)


@dataclass(frozen=True)
class ShardInputs:
    """Everything the training stages read, from one clean pass (the side memory swapped out).

    ``B`` is the number of variants (of all requests), ``T`` their padded length, ``in`` / ``out`` the module's
    input / output widths.
    """

    n_requests: int  # the edits trained together
    owner: torch.Tensor  # (B,) the request each variant belongs to
    enc: EncodedRequest  # the variants, encoded with their target labels (subject_last: the in-scope positions)
    keys: torch.Tensor  # (B, in) module inputs at the in-scope positions
    previous: torch.Tensor  # (B or 0, in) inputs one position before them (none unless the subject has 2+ tokens)
    main_out: torch.Tensor  # (B, T, out) the unedited module's output on the variants
    negatives: torch.Tensor  # (n_neg, in) irrelevant inputs: corpus sentences, the variants' text around the subject
    hard: torch.Tensor  # (n_hard, in) the prompt's forms about other names, every position
    quiet: torch.Tensor  # (q, in) module inputs around the subject in the unprefixed variants
    gram: torch.Tensor  # (in, in) damped second moment of the irrelevant inputs (and the prior)
    norm: float  # the module's median output norm on corpus positions: the unit of scores and margins


def gather_inputs(
    model: LocalLanguageModel,
    requests: Sequence[EditRequest],
    path: str,
    base: nn.Module,
    corpus: Sequence[str],
    settings: TrainSettings,
    prior: torch.Tensor | None,
) -> ShardInputs:
    """Build the variants and irrelevant texts of ``requests`` and read the module inputs at ``path``.

    The caller swaps any installed side memory out first (the inputs do not depend on it; its output is not
    used). Nothing is modified.

    Args:
        model: the model as it is; ``path`` the module's path, ``base`` that module (the original).
        requests: the edits trained together; ``corpus``: sentences for irrelevant inputs.
        settings: see :class:`TrainSettings`; ``prior``: ``(in, in)`` ROME's key statistics, averaged into
            ``gram`` (the sampled irrelevant inputs alone estimate it poorly), or ``None``.

    Raises:
        InvalidEditError: the corpus has no sentence without the edited subject(s).
    """
    net = model.model
    device = next(base.parameters()).device
    per_request = [variants(model, r, settings) for r in requests]
    forms = {f for r in requests for f in prompt_forms(model, r, settings)}
    all_variants = [v for vs in per_request for v in vs]
    owner_list = [i for i, vs in enumerate(per_request) for _ in vs]
    ends = None
    if settings.stop_after_target:  # also the token that closed the old answer ("Digna Baltus.", not "...dot")
        olds = [requests[i].target_old for i in owner_list]
        ends = answer_ends(model, [v.prompt for v in all_variants], olds)
    enc = encode_requests(model.tokenizer, all_variants, device, ends=ends)
    acts = _inputs(net, path, enc.input_ids, enc.attention_mask)  # (B, T, in)
    d_in = acts.shape[-1]
    subj = enc.subject_last  # (B,) the in-scope position of each variant
    keys = acts[torch.arange(len(all_variants), device=device), subj]  # (B, in)
    pos = torch.arange(enc.input_ids.shape[1], device=device)[None, :]
    first = torch.tensor([_subject_first(model.tokenizer, v.prompt, v.subject) for v in all_variants], device=device)
    outside = (pos < first[:, None]) | (pos > subj[:, None])
    outside = outside & enc.attention_mask.bool()  # (B, T) the variants' text around the subject
    unprefixed = torch.tensor([v.prompt in forms for v in all_variants], device=device)
    # the token before the subject's last one, where it is the subject's own in every variant (else none: ungated)
    previous = acts[torch.arange(len(all_variants), device=device), subj - 1] if bool((subj > first).all()) else None

    docs = _irrelevant(corpus, requests, settings.n_irrelevant, settings.seed)
    doc_ids, doc_attn = _pad_right(model.tokenizer, docs, device)
    doc_acts = _inputs(net, path, doc_ids, doc_attn)[doc_attn.bool()]  # (n_doc, in)
    negatives = torch.cat([doc_acts, acts[outside]])  # (n_neg, in)
    others = [v for r in requests for v in swapped(model, corpus, r, settings)]
    hard = torch.zeros(0, d_in, device=device)  # (n_hard, in) the other names' prompts, every position
    if others:
        o_ids, o_attn = _pad_right(model.tokenizer, [v.prompt for v in others], device)
        hard = _inputs(net, path, o_ids, o_attn)[o_attn.bool()]
    dtype = next(base.parameters()).dtype
    with torch.no_grad():
        main_out = base(acts.to(dtype)).float()  # (B, T, out)
        norm = float(base(doc_acts.to(dtype)).float().norm(dim=-1).median())
    gram = negatives.T @ negatives / negatives.shape[0]  # (in, in) second moment of irrelevant inputs
    if hard.numel():
        gram = gram + settings.hard * hard.T @ hard / hard.shape[0]
    if prior is not None:
        gram = (gram + prior.float()) / 2
    gram = gram + settings.damping * gram.diagonal().mean() * torch.eye(d_in, device=device)  # rare directions
    return ShardInputs(
        n_requests=len(requests),
        owner=torch.tensor(owner_list, device=device),
        enc=enc,
        keys=keys,
        previous=previous if previous is not None else torch.zeros(0, d_in, device=device),
        main_out=main_out,
        negatives=negatives,
        hard=hard,
        quiet=acts[outside & unprefixed[:, None]],
        gram=gram,
        norm=norm,
    )
