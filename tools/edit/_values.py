"""ROME's ``compute_v`` / MEMIT's ``compute_z``: the value optimisation shared by both editors.

* :func:`compute_values` — a vector added to a module's output at the subject's last token, optimised with Adam
  so the model says ``target_new`` after every prefixed prompt (:func:`tools.edit._keys.context_templates`),
  with a KL term keeping the ``"{subject} is a"`` distribution, weight decay, and a norm clamp. Only the blocks
  above the (lowest) edited module run per step (:mod:`tools.edit._upper`; bit-identical).
* :func:`answer_ends` — where each prompt's answer ends (:mod:`tools.edit._answer_ends`, re-exported).

Everything runs under :func:`~tools.edit._protocol.frozen_model`: the model's weights are never optimised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import torch
from torch.nn import functional

from tools.edit._answer_ends import answer_ends
from tools.edit._family import get_module
from tools.edit._keys import (
    ModelAndTokenizer,
    _base_and_head,
    _Batch,
    _encode,
    _subject_last_char,
    outputs_at_subject,
)
from tools.edit._lean_upper import Upper, upper_of
from tools.edit._preserve import Preservation
from tools.edit._request import EditRequest
from tools.edit._upper import Below, cache_below, fused_activations, lowest_edited, skipping_below

__all__ = ["ValueHyperParams", "ValueOptions", "ValueResult", "answer_ends", "compute_values", "value_options_of"]

logger = logging.getLogger(__name__)
_PROGRESS = 25  # steps between progress log lines
_RECHECK = 5  # steps between re-evaluations of chunks whose requests have all converged


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
    lean_upper: bool = True  # with skip_below: the blocks above as lean modules on packed tokens (bit-identical)
    joint: bool = True  # with a preservation term: every value moves until all have stopped; False: each
    # value stops on its own and its rows leave the steps (the paper's compute_z; issues 18/29, scores lower)
    recheck_every: int = 10  # per-value stop: steps between evaluations of the values already stopped
    # "lbfgs" / "lbfgs_capped": one chunk without preservation (tools.edit._value_lbfgs; ROME's default is the
    # capped one, MEMIT's fits keep Adam)
    optimizer: str = "adam"


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
    steps: int = 0  # Adam steps taken
    stop_steps: tuple[int, ...] = ()  # per value: the first step at which it was converged (-1: never)
    settled_steps: tuple[int, ...] = ()  # per value: the step from which on it stayed converged (-1: never)
    rows_run: int = 0  # prompt rows forwarded over the whole fit (the fit's work, besides the preservation term)


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
    return _chunk_of(batch, torch.tensor(list(ids), device=device), torch.tensor(owner, device=device), len(templates))


def _chunk_of(batch: _Batch, requests: torch.Tensor, owners: torch.Tensor, n_tpl: int) -> _Chunk:
    """A :class:`_Chunk` of encoded rows: ``n_tpl`` templated rows per request, then one KL row per request."""
    n_rw = len(requests) * n_tpl
    mask = batch.labels[:n_rw] != -100  # (n_rw, T)
    label_rows, label_pos = mask.nonzero(as_tuple=True)  # (M,), (M,)
    n_rows = batch.input_ids.shape[0]
    return _Chunk(
        batch=batch,
        requests=requests,
        owners=owners,
        n_tpl=n_tpl,
        label_rows=label_rows,
        gold=batch.labels[:n_rw][label_rows, label_pos],
        pick_rows=torch.cat([label_rows, torch.arange(n_rw, n_rows, device=label_rows.device)]),
        pick_pos=torch.cat([label_pos, batch.lookup[n_rw:]]),
        n_tokens=mask.sum(dim=1).clamp(min=1),
    )


@dataclass(frozen=True)
class _View:
    """Some requests of a chunk (all, or those whose values still move): its rows, cache and KL reference."""

    chunk: _Chunk
    below: Below | None
    response: torch.Tensor | None  # (n, T, R) the lowest edited module's fixed response, or None
    keep: torch.Tensor  # (r,) bool: which of the chunk's requests are in the view


def _view(chunk: _Chunk, keep: torch.Tensor, below: Below | None, response: torch.Tensor | None) -> _View:
    """The rows of ``chunk``'s requests where ``keep`` ``(r,)``: their templated rows, then their KL rows, with
    the cached blocks below and the fixed response cut to the same rows (the padding length stays the chunk's)."""
    if bool(keep.all()):
        return _View(chunk=chunk, below=below, response=response, keep=keep)
    local = keep.nonzero().squeeze(1)  # (k,)
    n_tpl = chunk.n_tpl
    steps = torch.arange(n_tpl, device=local.device)
    rows = torch.cat([(local[:, None] * n_tpl + steps).reshape(-1), len(keep) * n_tpl + local])  # (k * (n_tpl + 1),)
    b = chunk.batch
    batch = _Batch(
        input_ids=b.input_ids[rows], attention_mask=b.attention_mask[rows], lookup=b.lookup[rows], labels=b.labels[rows]
    )
    cut = None
    if below is not None:
        cut = Below(
            blocks=below.blocks, residual=below.residual[rows], mlp_output=below.mlp_output[rows], keys=below.keys[rows]
        )
    return _View(
        chunk=_chunk_of(batch, chunk.requests[keep], chunk.owners[rows], n_tpl),
        below=cut,
        response=None if response is None else response[rows],
        keep=keep,
    )


def _output_edit(
    chunk: _Chunk,
    delta: torch.Tensor,
    through: tuple[torch.Tensor, float] | None,
    response: torch.Tensor | None = None,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fn(x, out)``: a module's output ``out`` ``(N, T, d)`` (input ``x``) with ``delta`` added: at the
    subject's last token (``through`` is ``None``), or at every position as ``scale * (x @ directionᵀ) @ delta``
    (``through = (direction, scale)``; ``response``: ``x @ directionᵀ`` computed once for a fixed ``x``)."""
    if through is None:

        def at_subject(_x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
            shift = torch.zeros_like(out)
            rows = torch.arange(out.shape[0], device=out.device)
            shift[rows, chunk.batch.lookup] = delta[chunk.owners].to(out.dtype)
            return out + shift

        return at_subject
    direction, scale = through

    def along(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        weight = x @ direction.T.to(out.dtype) if response is None else response  # (N, T, R): each edit's response
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


@contextmanager
def _edited_forward(
    model: Any,
    chunk: _Chunk,
    delta: torch.Tensor,
    module_path: str,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None,
    below: Below | None,
    low: str | None = None,
    response: torch.Tensor | None = None,
) -> Iterator[None]:
    """The model with ``delta`` applied as :func:`_shifted` does; with ``below`` (cached for ``chunk`` up to
    the lowest edited module ``low``: ``module_path`` without ``directions``) the blocks up to it are not run
    again and the modules above get hooks (bit-identical); ``response`` is ``low``'s fixed ``x @ directionᵀ``."""
    if below is None:
        with _shifted(model, chunk, delta, module_path, directions):
            yield
    elif directions is None or low is None:
        with skipping_below(model, below, _output_edit(chunk, delta, None)):
            yield
    else:
        rest = {p: v for p, v in directions.items() if p != low}
        with (
            skipping_below(model, below, _output_edit(chunk, delta, directions[low], response)),
            _shifted(model, chunk, delta, module_path, rest) if rest else nullcontext(),
        ):
            yield


def _fixed_response(
    below: Below | None, directions: Mapping[str, tuple[torch.Tensor, float]] | None, low: str | None
) -> torch.Tensor | None:
    """``x @ directionᵀ`` ``(N, T, R)`` of the lowest edited module ``low``, whose input ``x`` (cached in
    ``below``) no edit changes: computed once per chunk instead of at every step, as the hook would."""
    if below is None or directions is None or low is None:
        return None
    return below.keys @ directions[low][0].T.to(below.mlp_output.dtype)


def _upper_for(
    model: Any,
    chunk: _Chunk,
    below: Below | None,
    low: str | None,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None,
    options: ValueOptions,
) -> Upper | None:
    """The lean blocks above the edited one for ``chunk`` (:mod:`tools.edit._lean_upper`), or ``None``: not
    asked for, no cache below, the fused activation (the lean GPT-2 keeps ``gelu_new``), or other edited modules
    above the lowest one (they act through hooks on the model's own modules)."""
    if not options.lean_upper or below is None or low is None or options.fused_activation:
        return None
    if directions is not None and set(directions) != {low}:
        return None
    layer = len(below.blocks) - 1
    batch = chunk.batch
    return upper_of(
        model, layer, batch.input_ids, batch.attention_mask, chunk.pick_rows, chunk.pick_pos, below.residual.dtype
    )


def _picked(
    model: Any,
    base: Any,
    view: _View,
    upper: Upper | None,
    delta: torch.Tensor,
    module_path: str,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None,
    low: str | None,
) -> torch.Tensor:
    """The final hidden states ``(M + r, d)`` of ``view``'s rows at their picked positions, with ``delta``
    applied: through the lean blocks above (``upper``, the whole chunk), else the hooked forward."""
    if upper is not None and view.below is not None:  # block L's output as _EditedBlock gives it, then lean
        through = None if directions is None else directions[low or module_path]
        edit = _output_edit(view.chunk, delta, through, view.response)
        return upper.picked(view.below.residual + edit(view.below.keys, view.below.mlp_output))
    ids, mask = view.chunk.batch.input_ids, view.chunk.batch.attention_mask
    with _edited_forward(model, view.chunk, delta, module_path, directions, view.below, low, view.response):
        out = base(input_ids=ids, attention_mask=mask)
    return out.last_hidden_state[view.chunk.pick_rows, view.chunk.pick_pos]


def _value_owners(n_req: int, groups: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """Each request's value index and each value's leading request (its first), checked.

    Raises:
        ValueError: ``groups`` does not give each request an index, or leaves one of ``0..G-1`` unused.
    """
    owner_list = list(range(n_req)) if groups is None else [int(g) for g in groups]
    if len(owner_list) != n_req or sorted(set(owner_list)) != list(range(len(set(owner_list)))):
        raise ValueError("compute_values: groups must give each request a value index, using every one of 0..G-1")
    return owner_list, [owner_list.index(g) for g in range(len(set(owner_list)))]


def _chunk_nll(chunk: _Chunk, head: Any, picked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """From one chunk's final hidden states at its picked positions ``(M + r, d)``: the mean target NLL per
    request ``(r,)`` over its templates, and the next-token log-probabilities at the KL prompts' subject ``(r, V)``."""
    logp = torch.log_softmax(head(picked).float(), dim=-1)
    n_gold = len(chunk.gold)
    gold = logp[:n_gold].gather(-1, chunk.gold.unsqueeze(-1)).squeeze(-1)  # (M,)
    per_row = torch.zeros(len(chunk.n_tokens), device=gold.device).index_add(0, chunk.label_rows, -gold)
    nll = (per_row / chunk.n_tokens).view(-1, chunk.n_tpl).mean(dim=1)  # (r,)
    return nll, logp[n_gold:]


def _above(nll: torch.Tensor, options: ValueOptions) -> torch.Tensor:
    """1.0 where a request's NLL is not yet below its stop, else 0.0 (same shape as ``nll``)."""
    return (nll >= options.early_stop_loss).float()


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

    With ``options.skip_below``, the blocks up to the edited module (with ``directions``: the lowest of their
    ``mlp_out`` paths, MEMIT's first layer) run once per chunk and each step runs the blocks above it, with
    hooks on the other edited modules; that lowest module's input is then fixed, so its response
    ``x @ directionᵀ`` is computed once per chunk too (:mod:`tools.edit._upper`; bit-identical results, full
    forwards where the shortcut is not exact). On GPT-2, a MEMIT batch of 100 over layers 0-1 took 18% less
    CPU time per fit of 4 steps this way (README, "Editing the model itself").

    With ``preserve`` (MEMIT's batches, see :mod:`tools.edit._preserve`) every step also adds its KL term on
    corpus sentences, forwarded through the same hooks, times the number of requests. By default
    (``options.joint``) the term keeps every value free to move and every chunk is evaluated at every step
    until all are converged. Without ``options.joint`` each value stops on its own, as the paper's
    ``compute_z`` stops each request at its own loss: once all its
    requests' NLL is below ``early_stop_loss`` the value is frozen (the corpus term's gradient no longer moves
    it) and its prompts' rows leave the later steps; every ``options.recheck_every`` steps all rows are
    evaluated again, and a value whose NLL has risen back above the stop (the other values' updates also act
    on its prompts) moves again. The fit ends when an evaluation of all rows finds every value stopped. On a
    GPT-2 batch of 100 that forwarded 23% fewer rows and scored lower (README, "Where a MEMIT / AlphaEdit
    batch spends its time"), so it is not the default.

    With ``options.optimizer`` ``"lbfgs"`` or ``"lbfgs_capped"`` (one chunk, no ``preserve`` or ``groups``) the
    same loss and stop are minimised by L-BFGS (:mod:`tools.edit._value_lbfgs`; fewer evaluations, other edits).

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
    if options.optimizer != "adam":
        if (
            options.optimizer not in ("lbfgs", "lbfgs_capped")
            or len(chunks) != 1
            or preserve is not None
            or groups is not None
        ):
            raise ValueError("compute_values: optimizer must be 'adam', or 'lbfgs' for one chunk, no preserve/groups")
        from tools.edit._value_lbfgs import fit_lbfgs  # imports this module

        with fused_activations(model) if options.fused_activation else nullcontext():
            return fit_lbfgs(model, module_path, chunks[0], init, directions, options)
    device = init.device
    owner = torch.tensor(owner_list, device=device)  # (R,) each request's value
    delta = torch.zeros_like(init, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=options.lr)
    init_norm = init.norm(dim=1)  # (G,)
    max_norm = (options.clamp_norm_factor * init_norm).unsqueeze(1)  # (G, 1)
    kl_init: dict[int, torch.Tensor] = {}
    nll_now = torch.zeros(n_req, device=device)
    base, head = _base_and_head(model)
    # per chunk, the blocks up to the (lowest) edited module, run once (see tools.edit._upper); None: full
    # forwards. The lowest module's input is then fixed too, so its response to the directions is computed once.
    low = module_path if directions is None else lowest_edited(model, directions)
    below: dict[int, Below | None] = {} if options.skip_below and low else dict.fromkeys(range(len(chunks)))
    responses: dict[int, torch.Tensor | None] = {}
    uppers: dict[int, Upper | None] = {}  # per chunk, the blocks above as lean modules (tools.edit._lean_upper)
    first = torch.full((len(lead),), -1, dtype=torch.long, device=device)  # (G,) see ValueResult.stop_steps
    settled = torch.full_like(first, -1)
    per_value = preserve is not None and not options.joint  # each value stops on its own (see the docstring)
    views: dict[int, _View] = {}  # per chunk, the last view evaluated (its requests change only at a stop)
    recheck = False  # per-value stop: every value looked stopped on stale figures: evaluate them all
    rows_run, taken = 0, 0
    start = time.perf_counter()
    with fused_activations(model) if options.fused_activation else nullcontext():
        for it in range(max(options.steps, 1)):
            if it % _PROGRESS == 0:  # a batch of 100 runs for minutes on a CPU: say how far it is
                logger.debug(
                    "compute_values: step %d/%d, %d of %d values stopped, worst NLL %.3f, %d rows run, %.0fs",
                    it,
                    options.steps,
                    int((first >= 0).sum()),
                    len(lead),
                    float(nll_now.max()),
                    rows_run,
                    time.perf_counter() - start,
                )
            opt.zero_grad()
            # (R,) whether each request's value still moves; a step of the per-value stop skips the stopped ones
            moving = (torch.zeros(len(lead), device=device).index_add(0, owner, _above(nll_now, options)) > 0)[owner]
            full = not per_value or recheck or it % max(1, options.recheck_every) == 0
            for c, chunk in enumerate(chunks):
                keep = torch.ones_like(chunk.requests, dtype=torch.bool) if full else moving[chunk.requests]
                if per_value and not bool(keep.any()):
                    continue  # every value of the chunk has stopped: its rows leave the step until the next recheck
                converged = not bool((nll_now[chunk.requests] >= options.early_stop_loss).any())
                if preserve is None and c in kl_init and it % _RECHECK and converged:
                    continue  # every request of the chunk has converged: look again only every _RECHECK steps
                if c not in below:
                    below[c] = cache_below(model, low or module_path, chunk.batch.input_ids, chunk.batch.attention_mask)
                if c not in responses:
                    responses[c] = _fixed_response(below[c], directions, low)
                if c not in views or not torch.equal(views[c].keep, keep):
                    views[c] = _view(chunk, keep, below[c], responses[c])
                view = views[c]
                if view.chunk is chunk and c not in uppers:
                    uppers[c] = _upper_for(model, chunk, below[c], low, directions, options)
                upper = uppers[c] if view.chunk is chunk else None  # a cut view runs the hooked forward
                picked = _picked(model, base, view, upper, delta, module_path, directions, low)
                rows_run += int(view.chunk.batch.input_ids.shape[0])
                nll, kl_logp = _chunk_nll(view.chunk, head, picked)
                if c not in kl_init:  # the first evaluation of a chunk is of all its rows, before any step
                    kl_init[c] = kl_logp.detach().clone()
                kl_ref = kl_init[c] if view.chunk is chunk else kl_init[c][keep]
                kl = functional.kl_div(kl_logp, kl_ref, log_target=True, reduction="none").sum(dim=-1)  # (r,)
                nll_now[view.chunk.requests] = nll.detach()
                if per_value:  # the requests of values still moving (a stopped one may have slipped back)
                    active = (_above(nll.detach(), options) + moving[view.chunk.requests].float()).clamp(max=1)
                elif preserve is None:
                    active = _above(nll.detach(), options)
                else:
                    active = torch.ones_like(nll)
                if bool(active.any()):  # a chunk whose requests have all converged gives no gradient
                    ((nll + options.kl_factor * kl) * active).sum().backward()
            active_all = torch.zeros(len(lead), device=device).index_add(0, owner, _above(nll_now, options)) > 0  # (G,)
            first = torch.where((first < 0) & ~active_all, it, first)
            settled = torch.where(active_all, -1, torch.where(settled < 0, it, settled))
            if not bool(active_all.any()):
                if full:
                    break
                recheck = True  # judged on the stopped values' last figures: look at them all before ending
                continue
            recheck = False
            taken += 1
            if preserve is not None:
                edited = partial(_shifted, model, chunks[0], delta, module_path, directions)
                (n_req * preserve.loss(model, edited)).backward()
                if per_value:
                    assert delta.grad is not None  # the term's backward gave one
                    delta.grad[~active_all] = 0.0  # a stopped value stays as it is (and its Adam moments decay)
                else:
                    active_all = torch.ones_like(active_all)  # joint: every value stays free to move (see above)
            _decay_and_step(opt, delta, options.weight_decay, init_norm, max_norm, active_all)
    return ValueResult(
        init=init,
        target=init + delta.detach(),
        nll=tuple(float(x) for x in nll_now),
        steps=taken,
        stop_steps=tuple(int(x) for x in first),
        settled_steps=tuple(int(x) for x in settled),
        rows_run=rows_run,
    )
