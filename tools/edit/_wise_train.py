"""Training one WISE edit: the current shard's side memory under its random mask, with the router's margins.

The side memory of a shard is ``W_main + D`` where ``D`` ``(out, in)`` is zero outside the shard's mask (a fixed
random ``mask_ratio`` fraction of the entries, seeded per shard). An edit adds an increment on the masked
entries. What the stages read (variants, keys, irrelevant inputs) is gathered by :mod:`tools.edit._wise_inputs`.

Training has three stages (the module input at layer ``l`` does not depend on the module's own output, so one
clean pass gives every input ``a(x)`` and the loops only replace outputs):

1. target (:func:`fit_targets`): a free output change ``dv`` per request at its in-scope positions, trained on the
   cross-entropy of the target tokens (ROME's ``v*``), and, with ``stop_after_target``, of the token the unedited
   model put after the old answer (MEMIT's option; without it 4 of the 24 failed greedy answers of 100 GPT-2 edits
   were the target running on, ``"Digna Baltusdottor"``, and with it reliability rose from 0.76 to 0.79); by Adam,
   or with ``v_optimizer="lbfgs_capped"`` by ROME's capped L-BFGS (:func:`_fit_capped`: far fewer passes);
2. solve (:func:`solve_increment`): the masked increment minimising ``sum ||inc @ k - (dv - D @ k)||^2`` over
   in-scope inputs ``k``, plus ``quiet`` times its mean squared output on irrelevant inputs (corpus sentences that
   do not mention the subject, and the variants' text before the subject: the router's "score low on irrelevant
   inputs", in expectation), plus ``keep`` times its squared output at earlier edits' in-scope inputs (so they keep
   working; WISE-Retrieve passes only the same shard's edits, its other shards being separate memories). The mask
   makes this one small ridge regression per output row, solved exactly;
3. margins (:func:`sharpen_margins`): WISE's router margin loss (in-scope scores above ``high``, irrelevant ones
   below ``low``, both relative to the module's median output norm) on the masked entries, with the two quadratic
   terms of stage 2: first ``margin_steps`` cheap steps on cached module inputs, keeping the in-scope outputs by
   squared error and pushing down the hardest irrelevant inputs, mined again as they change (:func:`_sharpen`);
   then ``ft_steps`` steps that also back-propagate the target's cross-entropy through the model (side memory
   active at the in-scope positions). Both are off by default: on the reference models they moved the 100-edit
   scores by about 0.01 (see :class:`~tools.edit._wise_settings.WiseRetrieveHyperParams`). Their hinges are on
   WISE's raw score ``||a(x) @ D^T||`` in units of the median output norm, also when the router divides the score
   by ``||a(x)||`` (``normalize_scores``): pushing an input's raw score down pushes its scaled one too.

Last, :func:`stored_negatives` keeps the irrelevant inputs the trained memory scores highest (for calibration).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as nnf

from tools.edit._family import family_of, get_module, set_module
from tools.edit._hooks import Replay, Trace
from tools.edit._request import EditRequest
from tools.edit._value_lbfgs import _capped, _StopFitError
from tools.edit._wise_inputs import ShardInputs, TrainSettings, gather_inputs
from tools.lm import LocalLanguageModel

__all__ = [
    "TrainedShard",
    "fit_targets",
    "shard_mask",
    "sharpen_margins",
    "solve_increment",
    "stored_negatives",
    "train_shard",
]

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
class TrainedShard:
    """The result: the masked entries' increment, the edit's in-scope inputs, diagnostics."""

    increment: torch.Tensor  # (nnz,) added to the shard's masked entries by this edit
    keys: torch.Tensor  # (m, in) module inputs at the in-scope positions of the edit prompts and variants
    quiet: torch.Tensor  # (q, in) module inputs around the subject in the unprefixed variants (prompt and target)
    negatives: torch.Tensor  # (k, in) the irrelevant inputs (corpus, other names) the trained memory scores highest
    previous: torch.Tensor  # (p, in) inputs one position before the in-scope ones (subjects of 2+ tokens)
    info: dict[str, float]


def _keeps_logits(net: nn.Module) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (Hugging Face causal LMs since 4.45; 1-D positions)."""
    return "logits_to_keep" in inspect.signature(net.forward).parameters


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


@dataclass(frozen=True)
class _Shard:
    """The shard being trained: what the router applies now, where the increment may go, what it must keep."""

    current: torch.Tensor  # (out, in) the side memory's delta the router would apply now
    mask_idx: torch.Tensor  # (nnz,) sorted flat indices of the shard's trainable entries
    anchors: torch.Tensor  # (M, in) in-scope inputs of the edits already held (their outputs are kept)

    def spread(self, increment: torch.Tensor) -> torch.Tensor:
        """``(out, in)``: the masked ``increment`` ``(nnz,)`` at its entries, zero elsewhere (gradients flow)."""
        d_out, d_in = self.current.shape
        zeros = torch.zeros(d_out * d_in, device=self.current.device)
        return zeros.index_put((self.mask_idx,), increment).reshape(d_out, d_in)

    def side(self, increment: torch.Tensor) -> torch.Tensor:
        """``(out, in)``: the side memory's delta with ``increment`` added: ``current + spread(increment)``."""
        return self.current + self.spread(increment)


class _TargetLoss:
    """Per-token NLL of the variants' targets with the module's output = main, plus a change at the keys.

    Calling it with ``change`` ``(B, out)`` runs the model once with the module's output replaced: the unedited
    output everywhere (each edit is trained as if the router were perfect) plus ``change`` at the in-scope
    positions; it returns the NLL ``(n_labels,)`` of every target token.
    """

    def __init__(self, model: LocalLanguageModel, path: str, inputs: ShardInputs) -> None:
        enc = inputs.enc
        self._net, self._path = model.model, path
        self._batch = torch.arange(enc.input_ids.shape[0], device=enc.input_ids.device)
        self._subj = enc.subject_last
        self._rows, cols = (enc.labels != -100).nonzero(as_tuple=True)
        self._labels = enc.labels[self._rows, cols]
        # speed (CPU: ~60 % of an edit is this loop): positions after the last label cannot change any loss in a
        # causal model, so the loop runs on the columns up to it; and the vocabulary projection only at the
        # labelled columns
        width = int(cols.max()) + 1
        self._ids, self._mask = enc.input_ids[:, :width], enc.attention_mask[:, :width]
        self._main = inputs.main_out[:, :width]
        kept, where = torch.unique(cols, return_inverse=True)
        self._extra: dict[str, Any] = {"logits_to_keep": kept} if _keeps_logits(self._net) else {}
        self._where = where if self._extra else cols
        if "use_cache" in inspect.signature(self._net.forward).parameters:
            self._extra["use_cache"] = False  # no key/value cache to fill (and none for the replayed blocks)
        # speed: the blocks below the edited one see the same inputs at every step: run once, then replayed
        self._replay = Replay(self._net, _blocks_below(self._net, path))
        self._replay.record(lambda: self._net(input_ids=self._ids, attention_mask=self._mask, **self._extra))

    def __call__(self, change: torch.Tensor) -> torch.Tensor:
        main, batch, subj = self._main, self._batch, self._subj

        def replace(out: torch.Tensor, _path: str) -> torch.Tensor:
            return main.index_put((batch, subj), main[batch, subj] + change).to(out.dtype)

        with self._replay.active(), Trace(self._net, self._path, edit_output=replace):
            logits = self._net(input_ids=self._ids, attention_mask=self._mask, **self._extra).logits
        return nnf.cross_entropy(logits[self._rows, self._where].float(), self._labels, reduction="none")


def _blocks_below(net: nn.Module, path: str) -> list[str]:
    """Paths of the transformer blocks below the one holding ``path`` (none if no block holds it)."""
    family = family_of(net)
    for layer in range(family.n_layers):
        if path.startswith(family.block.format(layer) + "."):
            return [family.block.format(i) for i in range(layer)]
    return []


def fit_targets(
    loss: _TargetLoss, inputs: ShardInputs, settings: TrainSettings
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stage 1: a free output change per request at its in-scope positions (ROME's ``v*``).

    Adam on ``loss`` until every target token's NLL is below ``v_stop_nll`` (by default
    :data:`~tools.edit._wise_inputs.STOP_NLL`) or ``v_steps`` are spent; then, with ``value_norm``, each change
    is lengthened to at least ``value_norm`` median output norms.

    Returns:
        ``(change, dv, steps)``: the wanted changes ``(n_requests, out)``, the raw trained ones before the norm
        floor, and the number of steps taken.
    """
    d_out = inputs.main_out.shape[-1]
    dv = torch.zeros(inputs.n_requests, d_out, device=inputs.keys.device, requires_grad=True)
    if settings.v_optimizer == "lbfgs_capped":
        steps = _fit_capped(loss, inputs, settings, dv)
        return _lengthened(dv.detach(), inputs, settings), dv.detach(), steps
    opt = torch.optim.Adam([dv], lr=settings.v_lr * inputs.norm)
    steps = 0
    with torch.enable_grad():
        while steps < settings.v_steps:
            steps += 1
            nll = loss(dv[inputs.owner])
            if float(nll.detach().max()) < settings.v_stop_nll:
                break
            opt.zero_grad()
            nll.mean().backward()
            opt.step()
    return _lengthened(dv.detach(), inputs, settings), dv.detach(), steps


def _lengthened(dv: torch.Tensor, inputs: ShardInputs, settings: TrainSettings) -> torch.Tensor:
    """With ``value_norm``, each change at least ``value_norm`` median output norms long (one common norm, so one
    threshold fits every edit)."""
    if settings.value_norm <= 0:
        return dv
    length = dv.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    return dv * (settings.value_norm * inputs.norm / length).clamp(min=1.0)


def _fit_capped(loss: _TargetLoss, inputs: ShardInputs, settings: TrainSettings, dv: torch.Tensor) -> int:
    """Stage 1 by capped L-BFGS (``v_optimizer="lbfgs_capped"``, ROME's value-fit rule): steps never longer than
    Adam's longest (``lr * sqrt(n_requests * out)``), an Armijo search that only backtracks, the same objective
    (mean target NLL) and stop (every token below ``v_stop_nll``), at most ``v_steps`` evaluations (each one
    forward and one backward, as an Adam step; line-search trials count). ``dv`` ends at the point that stopped
    the fit, else at the evaluated point of least loss. Returns the evaluations made."""
    state: dict[str, Any] = {"evals": 0, "best": None}

    def closure() -> torch.Tensor:
        if state["evals"] >= settings.v_steps:
            raise _StopFitError
        state["evals"] += 1
        dv.grad = None
        nll = loss(dv[inputs.owner])
        if float(nll.detach().max()) < settings.v_stop_nll:
            state["best"] = (float("-inf"), dv.detach().clone())
            raise _StopFitError
        total = nll.mean()
        total.backward()
        value = float(total.detach())
        if state["best"] is None or value < state["best"][0]:
            state["best"] = (value, dv.detach().clone())
        return total.detach()

    max_step = settings.v_lr * inputs.norm * dv.numel() ** 0.5
    with suppress(_StopFitError):
        _capped(closure, dv, max_step, settings.v_steps)
    if state["best"] is not None:
        with torch.no_grad():
            dv.copy_(state["best"][1])
    return int(state["evals"])


def solve_increment(inputs: ShardInputs, shard: _Shard, change: torch.Tensor, settings: TrainSettings) -> torch.Tensor:
    """Stage 2: the masked increment ``(nnz,)`` that adds ``change`` at the keys, quiet elsewhere (exact ridge).

    Minimises ``sum ||inc @ k - (change - current @ k)||^2 + quiet * n * inc gram inc^T + keep * ||anchors
    inc^T||^2`` over the masked entries (``n`` in-scope keys); see :func:`_solve_masked`.
    """
    keys = inputs.keys
    targets = change[inputs.owner] - keys @ shard.current.T  # (B, out) what the increment must add at the keys
    penalty = settings.quiet * keys.shape[0] * inputs.gram
    if shard.anchors.numel():
        penalty = penalty + settings.keep * shard.anchors.T @ shard.anchors
    return _solve_masked(keys, targets, penalty, shard.mask_idx, keys.shape[1])


def sharpen_margins(
    loss: _TargetLoss,
    inputs: ShardInputs,
    shard: _Shard,
    increment: torch.Tensor,
    goal: torch.Tensor,
    settings: TrainSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 3: the router's margins on the masked entries (both parts off by default).

    First ``margin_steps`` cheap steps on cached inputs (:func:`_sharpen`), then ``ft_steps`` steps that also
    back-propagate the target's cross-entropy through the model, with WISE's margin hinges on the negatives and
    stage 2's quadratic terms.

    Args:
        increment: ``(nnz,)`` stage 2's solution; ``goal``: ``(B, out)`` the change wanted at the keys.

    Returns:
        ``(increment, nll)``: the trained increment ``(nnz,)`` (detached) and the targets' NLL with it.
    """
    keys, negatives, norm = inputs.keys, inputs.negatives, inputs.norm
    low, high = settings.low * norm, settings.high * norm
    increment = _sharpen(increment, inputs, shard, goal, settings)
    increment = increment.clone().requires_grad_(True)
    opt = torch.optim.Adam([increment], lr=settings.ft_lr)
    nll = loss(keys @ shard.side(increment.detach()).T).detach()
    with torch.enable_grad():
        for _ in range(settings.ft_steps):
            inc = shard.spread(increment)
            side = shard.current + inc
            nll = loss(keys @ side.T)
            s_pos = (keys @ side.T).norm(dim=-1)
            s_neg = (negatives @ side.T).norm(dim=-1)
            margin = (nnf.relu(high - s_pos).mean() + nnf.relu(s_neg - low).mean()) / norm
            quad = _quadratic(inc, inputs, shard, settings)
            total = nll.mean() + settings.margin_weight * margin + quad / norm**2
            opt.zero_grad()
            total.backward()
            opt.step()
    return increment.detach(), nll.detach()


def stored_negatives(inputs: ShardInputs, final: torch.Tensor) -> torch.Tensor:
    """The :data:`_STORED_NEGATIVES` irrelevant inputs ``(k, in)`` the trained side memory ``final`` scores highest.

    They are the router's false positives now: what a calibrated threshold must stay above.
    """
    pool = torch.cat([inputs.negatives, inputs.hard])  # (n_pool, in) every irrelevant input seen
    with torch.no_grad():
        pool_scores = (pool @ final.T).norm(dim=-1)
        return pool[pool_scores.topk(min(_STORED_NEGATIVES, pool.shape[0])).indices]


@contextmanager
def _swapped(net: nn.Module, path: str, base: nn.Module) -> Iterator[None]:
    """Install ``base`` at ``path`` for the block; whatever was there is put back on exit, also on error.

    Every training pass either reads the module's input (which its own output cannot change) or replaces its
    whole output, so an installed side memory's router would be wasted work, and with one memory per edit
    (WISE-Retrieve at T = 1000) it would dominate the cost of an edit.
    """
    installed = get_module(net, path)
    set_module(net, path, base)
    try:
        yield
    finally:
        set_module(net, path, installed)


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

    The installed side memory (if any) is swapped for ``base`` while training (see :func:`_swapped`); the model
    is restored on exit, also on error. The stages: :func:`~tools.edit._wise_inputs.gather_inputs`,
    :func:`fit_targets`, :func:`solve_increment`, :func:`sharpen_margins`, :func:`stored_negatives`.

    Args:
        model: the model as it is.
        requests: the edits trained together.
        path: the wrapped module's path; ``base`` is that module (the original, even when an adapter wraps it).
        corpus: sentences for irrelevant inputs.
        current: ``(out, in)`` the side memory's delta the router would apply now (merged, or the shard's own).
        mask_idx: ``(nnz,)`` sorted flat indices of the shard's trainable entries.
        anchors: ``(M, in)`` in-scope inputs of the edits already held (their outputs are kept).
        settings: see :class:`~tools.edit._wise_inputs.TrainSettings`.
        prior: ``(in, in)`` second moment of the module's inputs over the whole corpus (ROME's key statistics),
            added to the sample's; the sampled irrelevant inputs alone estimate it poorly.

    Raises:
        InvalidEditError: the corpus has no sentence without the edited subject(s).
    """
    shard = _Shard(current=current, mask_idx=mask_idx, anchors=anchors)
    with _swapped(model.model, path, base):
        inputs = gather_inputs(model, requests, path, base, corpus, settings, prior)
        loss = _TargetLoss(model, path, inputs)
        change, dv, v_steps = fit_targets(loss, inputs, settings)
        increment = solve_increment(inputs, shard, change, settings)
        increment, nll = sharpen_margins(loss, inputs, shard, increment, change[inputs.owner], settings)
    keys, negatives = inputs.keys, inputs.negatives
    final = shard.side(increment)
    info = {
        "v_steps": float(v_steps),
        "dv_norm": float(dv.norm(dim=-1).mean()),
        "max_nll": float(nll.max()),
        "min_pos": float((keys @ final.T).norm(dim=-1).min()),
        "neg_q99": float((negatives @ final.T).norm(dim=-1).quantile(0.99)),
        "norm": inputs.norm,
        "cur_at_keys": float((keys @ current.T).norm(dim=-1).mean()),
        "inc_neg_med": float((negatives @ (final - current).T).norm(dim=-1).median()),
    }
    hardest = stored_negatives(inputs, final)
    return TrainedShard(
        increment=increment.clone(),
        keys=keys.detach().clone(),
        quiet=inputs.quiet.detach().clone(),
        negatives=hardest.clone(),
        previous=inputs.previous.detach().clone(),
        info=info,
    )


def _quadratic(inc: torch.Tensor, inputs: ShardInputs, shard: _Shard, settings: TrainSettings) -> torch.Tensor:
    """Stage 2's penalty of an increment ``(out, in)``, per in-scope input: ``quiet`` times its mean squared output
    on irrelevant inputs (``gram`` their second moment) plus ``keep`` times its squared output at the anchors / n."""
    quad = settings.quiet * ((inc @ inputs.gram) * inc).sum()
    if shard.anchors.numel():
        quad = quad + settings.keep * (shard.anchors @ inc.T).square().sum() / inputs.keys.shape[0]
    return quad


def _sharpen(
    increment: torch.Tensor, inputs: ShardInputs, shard: _Shard, goal: torch.Tensor, settings: TrainSettings
) -> torch.Tensor:
    """WISE's router margins without the language model: ``margin_steps`` Adam steps on the masked entries.

    The loss keeps the side memory's change at the in-scope inputs (squared error to ``goal``), pushes their
    scores above ``high`` and the scores of the ``n_mined`` highest-scoring irrelevant inputs (negatives and hard
    ones) below ``low`` (hinges, as WISE's margin loss; the hardest negatives are mined again every few steps, so
    the router's false positives, not the average irrelevant input, are what is trained away), plus the quadratic
    terms of the ridge solve. Only module inputs cached earlier are used, so a step costs a few matrix products.
    """
    pool = torch.cat([inputs.negatives, inputs.hard])  # (n_pool, in) every irrelevant input seen
    if settings.margin_steps <= 0 or not pool.numel():
        return increment
    keys, norm = inputs.keys, inputs.norm
    low, high = settings.low * norm, settings.high * norm
    inc_flat = increment.clone().requires_grad_(True)
    opt = torch.optim.Adam([inc_flat], lr=settings.ft_lr)
    hardest = pool[:0]
    with torch.enable_grad():
        for step in range(settings.margin_steps):
            if step % _MINE_EVERY == 0:
                with torch.no_grad():
                    scores = (pool @ shard.side(inc_flat.detach()).T).norm(dim=-1)
                    top = scores.topk(min(settings.n_mined, scores.numel())).indices
                    hardest = pool[top]
            inc = shard.spread(inc_flat)
            side = shard.current + inc
            out = keys @ side.T  # (B, out)
            fit = (out - goal).square().sum(dim=-1).mean() / norm**2
            margin = nnf.relu(high - out.norm(dim=-1)).mean() + nnf.relu((hardest @ side.T).norm(dim=-1) - low).mean()
            quad = _quadratic(inc, inputs, shard, settings)
            loss = fit + settings.margin_weight * margin / norm + quad / norm**2
            opt.zero_grad()
            loss.backward()
            opt.step()
    return inc_flat.detach()
