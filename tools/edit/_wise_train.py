"""Training one WISE edit: the current shard's side memory under its random mask, with the router's margins.

The side memory of a shard is ``W_main + D`` where ``D`` ``(out, in)`` is zero outside the shard's mask (a fixed
random ``mask_ratio`` fraction of the entries, seeded per shard). An edit adds an increment on the masked
entries. The in-scope positions are the subject's last token of the edit prompt and of its variants: there
the side memory rewrites what the model recalls about the subject (as ROME's edited MLP does), so paraphrases
that mention the subject are routed to it too. Variants are built from the request alone: the prompt, question
forms of it wrapped in the model's prompt format ("Alibaba's CEO is" -> "Q: Who is Alibaba's CEO?\\nA:"), and
each of those after short random prefixes sampled from the model (as ROME's context templates are).

Training has three stages (the module input at layer ``l`` does not depend on the module's own output, so one
clean pass gives every input ``a(x)`` and the loops only replace outputs):

1. target: a free output change ``dv`` per request at its in-scope positions, trained on the cross-entropy of
   the target tokens (ROME's ``v*``), and, with ``stop_after_target``, of the token the unedited model put after
   the old answer (MEMIT's option; without it 4 of the 24 failed greedy answers of 100 GPT-2 edits were the target
   running on, ``"Digna Baltusdottor"``, and with it reliability rose from 0.76 to 0.79);
2. solve: the masked increment minimising ``sum ||inc @ k - (dv - D @ k)||^2`` over in-scope inputs ``k``, plus
   ``quiet`` times its mean squared output on irrelevant inputs (corpus sentences that do not mention the
   subject, and the variants' text before the subject: the router's "score low on irrelevant inputs", in
   expectation), plus ``keep`` times its squared output at earlier edits' in-scope inputs (so they keep
   working; WISE-Retrieve passes only the same shard's edits, its other shards being separate memories). The
   mask makes this one small ridge regression per output row, solved exactly;
3. margins: WISE's router margin loss (in-scope scores above ``high``, irrelevant ones below ``low``, both
   relative to the module's median output norm) on the masked entries, with the two quadratic terms of stage
   2: first ``margin_steps`` cheap steps on cached module inputs, keeping the in-scope outputs by squared error
   and pushing down the hardest irrelevant inputs, mined again as they change (:func:`_sharpen`); then
   ``ft_steps`` steps that also back-propagate the target's cross-entropy through the model (side memory
   active at the in-scope positions). Both are off by default: on the reference models they moved the
   100-edit scores by about 0.01 (see :class:`~tools.edit._wise.WiseRetrieveHyperParams`). Their hinges are on
   WISE's raw score ``||a(x) @ D^T||`` in units of the median output norm, also when the router divides the
   score by ``||a(x)||`` (``normalize_scores``): pushing an input's raw score down pushes its scaled one too.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as nnf

from tools.edit._family import get_module, set_module
from tools.edit._hooks import Trace
from tools.edit._keys import answer_ends
from tools.edit._request import EditRequest, encode_requests
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["TrainSettings", "TrainedShard", "question_forms", "shard_mask", "train_shard", "variants"]

_COPULAS = ("is", "are", "was", "were")
_PREFIX_SEEDS = ("The", "Therefore", "Because", "I", "You", "In", "A", "It")
_STOP_NLL = 0.05  # the target is reached when every target token has probability > ~0.95
_MINE_EVERY = 10  # margin steps between two minings of the hardest irrelevant inputs
_STORED_NEGATIVES = 16  # hardest irrelevant inputs kept per edit (16 x 768 floats: 49 KB; 49 MB at T = 1000)


def shard_mask(d_out: int, d_in: int, ratio: float, seed: int, shard: int) -> torch.Tensor:
    """Sorted flat indices ``(nnz,)`` into an ``(out, in)`` matrix of the entries shard ``shard`` may train.

    Shards do not overlap (the WISE reference draws each new mask from the entries no earlier shard used): a
    seeded permutation of all entries is cut into consecutive blocks of ``round(ratio * out * in)``, and shard
    ``k`` takes block ``k``. Once the blocks run out (more than ``1 / ratio`` shards) a new permutation starts a
    new cycle, so only shards of different cycles can overlap. With disjoint masks, TIES merging at density 1
    is the plain sum of the shards. Drawn on the CPU from ``seed`` and ``shard`` only, so every device and
    every reload gets the same mask.
    """
    total = d_out * d_in
    size = max(1, min(total, round(ratio * total)))
    per_cycle = total // size
    cycle, block = divmod(shard, per_cycle)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + cycle)
    perm = torch.randperm(total, generator=gen)
    return perm[block * size : (block + 1) * size].sort().values


@dataclass(frozen=True)
class TrainSettings:
    """What :func:`train_shard` needs from the hyperparameters (see :class:`~tools.edit._wise.WiseHyperParams`)."""

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


@dataclass(frozen=True)
class TrainedShard:
    """The result: the masked entries' increment, the edit's in-scope inputs, diagnostics."""

    increment: torch.Tensor  # (nnz,) added to the shard's masked entries by this edit
    keys: torch.Tensor  # (m, in) module inputs at the in-scope positions of the edit prompts and variants
    quiet: torch.Tensor  # (q, in) module inputs around the subject in the unprefixed variants (prompt and target)
    negatives: torch.Tensor  # (k, in) the irrelevant inputs (corpus, other names) the trained memory scores highest
    info: dict[str, float]


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


def _keeps_logits(net: nn.Module) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (Hugging Face causal LMs since 4.45; 1-D positions)."""
    return "logits_to_keep" in inspect.signature(net.forward).parameters


def _inputs(net: nn.Module, path: str, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with Trace(net, path, retain_input=True) as trace:
        net(input_ids=input_ids, attention_mask=mask)
    assert trace.input is not None
    return trace.input.float()  # (B, T, in)


def _solve_masked(
    keys: torch.Tensor, targets: torch.Tensor, penalty: torch.Tensor, mask_idx: torch.Tensor, d_in: int
) -> torch.Tensor:
    """Per output row ``r``: ``w = argmin ||keys[:, M_r] w - targets[:, r]||^2 + w^T penalty[M_r, M_r] w``.

    Args:
        keys: ``(n, in)``; targets: ``(n, out)``; penalty: ``(in, in)`` symmetric positive semi-definite;
        mask_idx: ``(nnz,)`` sorted flat indices (row-major) of the trainable entries.

    Returns:
        ``(nnz,)`` the solution at ``mask_idx``.
    """
    rows, cols = mask_idx // d_in, mask_idx % d_in
    counts = torch.bincount(rows, minlength=targets.shape[1]).tolist()
    if all(c == d_in for c in counts):  # no mask: every row shares one system
        system = keys.T @ keys + penalty
        system = system + 1e-6 * system.diagonal().mean().clamp(min=1e-12) * torch.eye(d_in, device=keys.device)
        return torch.linalg.solve(system, keys.T @ targets).T.reshape(-1)  # (out, in) row-major
    out = torch.zeros(mask_idx.numel(), device=keys.device, dtype=torch.float32)
    offset = 0
    for r, count in enumerate(counts):
        if count:
            c = cols[offset : offset + count]
            k = keys[:, c]  # (n, m)
            system = k.T @ k + penalty[c][:, c]
            system = system + 1e-6 * system.diagonal().mean().clamp(min=1e-12) * torch.eye(count, device=keys.device)
            out[offset : offset + count] = torch.linalg.solve(system, k.T @ targets[:, r])
        offset += count
    return out


def train_shard(
    model: LocalLanguageModel,
    requests: Sequence[EditRequest],
    path: str,
    base: nn.Module,
    corpus: Sequence[str],
    current: torch.Tensor,
    mask_idx: torch.Tensor,
    anchors: torch.Tensor,
    settings: TrainSettings,
    prior: torch.Tensor | None = None,
) -> TrainedShard:
    """Train the masked entries of one shard's increment for ``requests`` (the model is not modified).

    The installed side memory (if any) is swapped for ``base`` while training: every pass either reads the
    module's input (which its own output cannot change) or replaces its whole output, so the router's work would
    be wasted, and with one memory per edit (WISE-Retrieve at T = 1000) it would dominate the cost of an edit.
    The model is restored on exit, also on error.

    Args:
        model: the model as it is.
        requests: the edits trained together.
        path: the wrapped module's path; ``base`` is that module (the original, even when an adapter wraps it).
        corpus: sentences for irrelevant inputs.
        current: ``(out, in)`` the side memory's delta the router would apply now (merged, or the shard's own).
        mask_idx: ``(nnz,)`` sorted flat indices of the shard's trainable entries.
        anchors: ``(M, in)`` in-scope inputs of the edits already held (their outputs are kept).
        settings: see :class:`TrainSettings`.
        prior: ``(in, in)`` second moment of the module's inputs over the whole corpus (ROME's key statistics),
            added to the sample's; the sampled irrelevant inputs alone estimate it poorly.
    """
    installed = get_module(model.model, path)
    set_module(model.model, path, base)
    try:
        return _train(model, requests, path, base, corpus, current, mask_idx, anchors, settings, prior)
    finally:
        set_module(model.model, path, installed)


def _train(
    model: LocalLanguageModel,
    requests: Sequence[EditRequest],
    path: str,
    base: nn.Module,
    corpus: Sequence[str],
    current: torch.Tensor,
    mask_idx: torch.Tensor,
    anchors: torch.Tensor,
    settings: TrainSettings,
    prior: torch.Tensor | None = None,
) -> TrainedShard:
    """The body of :func:`train_shard` (the installed side memory already swapped out)."""
    net = model.model
    device = current.device
    d_out, d_in = current.shape
    per_request = [variants(model, r, settings) for r in requests]
    forms = {f for r in requests for f in prompt_forms(model, r, settings)}
    all_variants = [v for vs in per_request for v in vs]
    owner_list = [i for i, vs in enumerate(per_request) for _ in vs]
    owner = torch.tensor(owner_list, device=device)  # (B,)
    ends = None
    if settings.stop_after_target:  # also the token that closed the old answer ("Digna Baltus.", not "...dot")
        olds = [requests[i].target_old for i in owner_list]
        ends = answer_ends(model, [v.prompt for v in all_variants], olds)
    enc = encode_requests(model.tokenizer, all_variants, device, ends=ends)
    acts = _inputs(net, path, enc.input_ids, enc.attention_mask)  # (B, T, in)
    batch = torch.arange(len(all_variants), device=device)
    subj = enc.subject_last  # (B,) the in-scope position of each variant
    keys = acts[batch, subj]  # (B, in)
    pos = torch.arange(enc.input_ids.shape[1], device=device)[None, :]
    first = torch.tensor([_subject_first(model.tokenizer, v.prompt, v.subject) for v in all_variants], device=device)
    outside = (pos < first[:, None]) | (pos > subj[:, None])
    outside = outside & enc.attention_mask.bool()  # (B, T) the variants' text around the subject

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
    rows, cols = (enc.labels != -100).nonzero(as_tuple=True)
    labels = enc.labels[rows, cols]
    # speed (CPU: ~60 % of an edit is this loop): positions after the last label cannot change any loss in a causal
    # model, so the loop runs on the columns up to it; and the vocabulary projection only at the labelled columns
    width = int(cols.max()) + 1
    loop_ids, loop_mask, loop_main = enc.input_ids[:, :width], enc.attention_mask[:, :width], main_out[:, :width]
    kept, where = torch.unique(cols, return_inverse=True)
    extra = {"logits_to_keep": kept} if _keeps_logits(net) else {}
    where = where if extra else cols

    def ce(change: torch.Tensor) -> torch.Tensor:
        """Per-token NLL with the module's output = main, plus ``change`` ``(B, out)`` at the in-scope positions."""

        def replace(out: torch.Tensor, _path: str) -> torch.Tensor:
            # the main memory everywhere else: each edit is trained as if the router were perfect
            return loop_main.index_put((batch, subj), loop_main[batch, subj] + change).to(out.dtype)

        with Trace(net, path, edit_output=replace):
            logits = net(input_ids=loop_ids, attention_mask=loop_mask, **extra).logits
        return nnf.cross_entropy(logits[rows, where].float(), labels, reduction="none")

    # 1. target output changes, one per request
    dv = torch.zeros(len(requests), d_out, device=device, requires_grad=True)
    opt = torch.optim.Adam([dv], lr=settings.v_lr * norm)
    v_steps = 0
    with torch.enable_grad():
        while v_steps < settings.v_steps:
            v_steps += 1
            nll = ce(dv[owner])
            if float(nll.detach().max()) < _STOP_NLL:
                break
            opt.zero_grad()
            nll.mean().backward()
            opt.step()
    change = dv.detach()
    if settings.value_norm > 0:  # at least one common norm, so one threshold fits every edit
        length = change.norm(dim=-1, keepdim=True).clamp(min=1e-6)
        change = change * (settings.value_norm * norm / length).clamp(min=1.0)
    targets = change[owner] - keys @ current.T  # (B, out) what the increment must add at the keys

    # 2. the masked ridge solve
    n = keys.shape[0]
    penalty = settings.quiet * n * gram
    if anchors.numel():
        penalty = penalty + settings.keep * anchors.T @ anchors
    increment = _solve_masked(keys, targets, penalty, mask_idx, d_in)

    # 3. the router's margins on the masked entries: cheap steps on cached inputs, then optional CE fine-tuning
    zeros = torch.zeros(d_out * d_in, device=device)
    low, high = settings.low * norm, settings.high * norm
    pool = torch.cat([negatives, hard])  # (n_pool, in) every irrelevant input seen
    goal = change[owner]  # (B, out) the side memory's change wanted at the in-scope inputs
    increment = _sharpen(increment, current, mask_idx, keys, goal, pool, gram, anchors, settings, norm, n)
    increment = increment.clone().requires_grad_(True)
    opt = torch.optim.Adam([increment], lr=settings.ft_lr)
    nll = ce(keys @ (current + zeros.index_put((mask_idx,), increment.detach()).reshape(d_out, d_in)).T).detach()
    with torch.enable_grad():
        for _ in range(settings.ft_steps):
            inc = zeros.index_put((mask_idx,), increment).reshape(d_out, d_in)
            side = current + inc
            nll = ce(keys @ side.T)
            s_pos = (keys @ side.T).norm(dim=-1)
            s_neg = (negatives @ side.T).norm(dim=-1)
            margin = (nnf.relu(high - s_pos).mean() + nnf.relu(s_neg - low).mean()) / norm
            loss = nll.mean() + settings.margin_weight * margin + _quadratic(inc, gram, anchors, settings, n) / norm**2
            opt.zero_grad()
            loss.backward()
            opt.step()
    final = current + zeros.index_put((mask_idx,), increment.detach()).reshape(d_out, d_in)
    info = {
        "v_steps": float(v_steps),
        "dv_norm": float(dv.detach().norm(dim=-1).mean()),
        "max_nll": float(nll.detach().max()),
        "min_pos": float((keys @ final.T).norm(dim=-1).min()),
        "neg_q99": float((negatives @ final.T).norm(dim=-1).quantile(0.99)),
        "norm": norm,
        "cur_at_keys": float((keys @ current.T).norm(dim=-1).mean()),
        "inc_neg_med": float((negatives @ (final - current).T).norm(dim=-1).median()),
    }
    unprefixed = torch.tensor([v.prompt in forms for v in all_variants], device=device)
    quiet = acts[outside & unprefixed[:, None]]
    with torch.no_grad():  # the router's false positives now: what a calibrated threshold must stay above
        pool_scores = (pool @ final.T).norm(dim=-1)
        hardest = pool[pool_scores.topk(min(_STORED_NEGATIVES, pool.shape[0])).indices]
    return TrainedShard(
        increment.detach().clone(), keys.detach().clone(), quiet.detach().clone(), hardest.clone(), info
    )


def _quadratic(
    inc: torch.Tensor, gram: torch.Tensor, anchors: torch.Tensor, settings: TrainSettings, n: int
) -> torch.Tensor:
    """Stage 2's penalty of an increment ``(out, in)``, per in-scope input: ``quiet`` times its mean squared output
    on irrelevant inputs (``gram`` their second moment) plus ``keep`` times its squared output at the anchors / n."""
    quad = settings.quiet * ((inc @ gram) * inc).sum()
    if anchors.numel():
        quad = quad + settings.keep * (anchors @ inc.T).square().sum() / n
    return quad


def _sharpen(
    increment: torch.Tensor,
    current: torch.Tensor,
    mask_idx: torch.Tensor,
    keys: torch.Tensor,
    goal: torch.Tensor,
    pool: torch.Tensor,
    gram: torch.Tensor,
    anchors: torch.Tensor,
    settings: TrainSettings,
    norm: float,
    n: int,
) -> torch.Tensor:
    """WISE's router margins without the language model: ``margin_steps`` Adam steps on the masked entries.

    The loss keeps the side memory's change at the in-scope inputs (squared error to ``goal``), pushes their
    scores above ``high`` and the scores of the ``n_mined`` highest-scoring irrelevant inputs of ``pool`` below
    ``low`` (hinges, as WISE's margin loss; the hardest negatives are mined again every few steps, so the
    router's false positives, not the average irrelevant input, are what is trained away), plus the quadratic
    terms of the ridge solve. Only module inputs cached earlier are used, so a step costs a few matrix products.
    """
    if settings.margin_steps <= 0 or not pool.numel():
        return increment
    d_out, d_in = current.shape
    zeros = torch.zeros(d_out * d_in, device=current.device)
    low, high = settings.low * norm, settings.high * norm
    inc_flat = increment.clone().requires_grad_(True)
    opt = torch.optim.Adam([inc_flat], lr=settings.ft_lr)
    hardest = pool[:0]
    with torch.enable_grad():
        for step in range(settings.margin_steps):
            if step % _MINE_EVERY == 0:
                with torch.no_grad():
                    side = current + zeros.index_put((mask_idx,), inc_flat.detach()).reshape(d_out, d_in)
                    scores = (pool @ side.T).norm(dim=-1)
                    top = scores.topk(min(settings.n_mined, scores.numel())).indices
                    hardest = pool[top]
            inc = zeros.index_put((mask_idx,), inc_flat).reshape(d_out, d_in)
            side = current + inc
            out = keys @ side.T  # (B, out)
            fit = (out - goal).square().sum(dim=-1).mean() / norm**2
            margin = nnf.relu(high - out.norm(dim=-1)).mean() + nnf.relu((hardest @ side.T).norm(dim=-1) - low).mean()
            loss = fit + settings.margin_weight * margin / norm + _quadratic(inc, gram, anchors, settings, n) / norm**2
            opt.zero_grad()
            loss.backward()
            opt.step()
    return inc_flat.detach()
