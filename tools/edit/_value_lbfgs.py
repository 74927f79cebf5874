"""The value fit of :func:`~tools.edit._values.compute_values` by L-BFGS (``ValueOptions.optimizer = "lbfgs"``).

The same objective as the Adam fit — mean target NLL per token over the templated prompts, plus ``kl_factor``
times the KL on ``"{subject} is a"``, plus ``weight_decay * ||delta|| / ||init||^2`` — and the same stop: the fit
ends at the first evaluated ``delta`` whose NLL is below ``early_stop_loss``, or after ``steps`` evaluations
(each one forward and one backward, as an Adam step), keeping then the evaluated ``delta`` of least objective.
``delta`` is a single ``d``-vector per value; every evaluation (line-search trials included) counts against
``steps``. The norm clamp is applied once at the end. Used for one chunk without a preservation term (ROME's
single edits). Two step rules:

* ``"lbfgs"``: :class:`torch.optim.LBFGS` with its strong-Wolfe line search (which extrapolates up to 10x per
  trial). Fewest evaluations, but on hard edits it reaches the stop with a ``delta`` about twice Adam's norm.
* ``"lbfgs_capped"``: L-BFGS (:func:`_capped`) whose steps are never longer than Adam's longest
  (``lr * sqrt(d)``; Adam's step is about ``lr`` per coordinate) and whose line search only backtracks from
  the full step (Armijo); the first step is ``-grad`` at that length. ROME's default since issue 30's sixth
  session (with a stricter stop on GPT-2: ``ROMEHyperParams.for_family`` in :mod:`tools.edit._rome`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch.nn import functional

from tools.edit._keys import _base_and_head
from tools.edit._upper import cache_below, lowest_edited
from tools.edit._values import (
    ValueOptions,
    ValueResult,
    _above,
    _Chunk,
    _chunk_nll,
    _fixed_response,
    _picked,
    _upper_for,
    _view,
)

__all__ = ["fit_lbfgs"]
logger = logging.getLogger(__name__)
_HISTORY = 10  # L-BFGS curvature pairs kept


class _StopFitError(Exception):
    """Raised from the closure to end the fit (a value below its stop, or the evaluations spent)."""


def fit_lbfgs(
    model: Any,
    module_path: str,
    chunk: _Chunk,
    init: torch.Tensor,
    directions: Mapping[str, tuple[torch.Tensor, float]] | None,
    options: ValueOptions,
) -> ValueResult:
    """Fit ``delta`` ``(r, d)`` for ``chunk``'s requests (one value each) by L-BFGS; see the module docstring."""
    base, head = _base_and_head(model)
    low = module_path if directions is None else lowest_edited(model, directions)
    batch = chunk.batch
    below = cache_below(model, low, batch.input_ids, batch.attention_mask) if options.skip_below and low else None
    response = _fixed_response(below, directions, low)
    view = _view(chunk, torch.ones_like(chunk.requests, dtype=torch.bool), below, response)
    upper = _upper_for(model, chunk, below, low, directions, options)
    x = torch.zeros_like(init, requires_grad=True)  # delta = scale * x (scale set at the first evaluation)
    scale = torch.ones_like(init[:, :1])  # (r, 1)
    init_norm = init.norm(dim=1)  # (r,)
    budget = max(options.steps, 1)
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=budget, max_eval=budget, history_size=_HISTORY, line_search_fn="strong_wolfe"
    )
    state: dict[str, Any] = {"evals": 0, "kl_ref": None, "stopped": False, "best": None, "first": None}

    def closure() -> torch.Tensor:
        if state["first"] is not None:  # L-BFGS's own first evaluation, at x = 0: the one already made
            loss, grad = state["first"]
            state["first"] = None
            x.grad = scale * grad
            return loss
        if state["evals"] >= budget:
            raise _StopFitError
        opt.zero_grad()
        delta = scale * x
        picked = _picked(model, base, view, upper, delta, module_path, directions, low)
        nll, kl_logp = _chunk_nll(chunk, head, picked)
        if state["kl_ref"] is None:  # the first evaluation is at delta = 0
            state["kl_ref"] = kl_logp.detach().clone()
        state["evals"] += 1
        if not bool(_above(nll.detach(), options).any()):  # every request below its stop: this delta is the fit
            state["stopped"], state["best"] = True, (0.0, delta.detach().clone(), nll.detach())
            raise _StopFitError
        kl = functional.kl_div(kl_logp, state["kl_ref"], log_target=True, reduction="none").sum(dim=-1)  # (r,)
        decay = options.weight_decay * delta.norm(dim=1) / init_norm**2
        loss = (nll + options.kl_factor * kl + decay).sum()
        loss.backward()
        value = float(loss.detach())
        if state["best"] is None or value < state["best"][0]:
            state["best"] = (value, delta.detach().clone(), nll.detach())
        return loss.detach()

    if options.optimizer == "lbfgs_capped":
        with contextlib.suppress(_StopFitError):
            _capped(closure, x, options.lr * init.shape[1] ** 0.5, budget)
        return _result(state, init, init_norm, options, chunk)
    with contextlib.suppress(_StopFitError):
        loss0 = closure()  # at delta = 0: its gradient sets the scale of L-BFGS's first step
        assert x.grad is not None
        grad = x.grad.detach().clone()  # (r, d), with scale 1
        # L-BFGS's first step is x.grad / ||x.grad||_1, so delta's has norm scale * |g|_2 / |g|_1; with this scale
        # it is sqrt(lr * sqrt(d) * |g|_2 / |g|_1): the geometric mean of L-BFGS's own first step and Adam's
        # (lr * sign(g), norm lr * sqrt(d)), which L-BFGS's line search otherwise reaches in a few evaluations
        l1, l2 = grad.abs().sum(dim=1, keepdim=True), grad.norm(dim=1, keepdim=True).clamp(min=1e-30)
        scale = (options.lr * grad.shape[1] ** 0.5 * l1 / l2).clamp(min=1e-30) ** 0.5
        state["first"] = (loss0, grad)
        while state["evals"] < budget:
            before = state["evals"]
            opt.step(closure)
            if state["evals"] - before <= 1:  # converged by L-BFGS's own tolerances: no further progress
                break
    return _result(state, init, init_norm, options, chunk)


def _result(
    state: dict[str, Any], init: torch.Tensor, init_norm: torch.Tensor, options: ValueOptions, chunk: _Chunk
) -> ValueResult:
    """The fit's :class:`ValueResult`: the stopping ``delta``, else the evaluated one of least objective."""
    _, best, nll = state["best"]
    max_norm = (options.clamp_norm_factor * init_norm).unsqueeze(1)  # (r, 1)
    norms = best.norm(dim=1, keepdim=True)
    if bool((norms > max_norm).any()):
        logger.debug("fit_lbfgs: delta clamped to %.1fx the initial norm", options.clamp_norm_factor)
    best = best * torch.where(norms > max_norm, max_norm / norms, torch.ones_like(norms))
    stop = state["evals"] - 1 if state["stopped"] else -1
    n_req = len(chunk.requests)
    return ValueResult(
        init=init,
        target=init + best,
        nll=tuple(float(x) for x in nll),
        steps=state["evals"],
        stop_steps=(stop,) * n_req,
        settled_steps=(stop,) * n_req,
        rows_run=state["evals"] * int(chunk.batch.input_ids.shape[0]),
    )


def _capped(closure: Any, x: torch.Tensor, max_step: float, budget: int) -> None:
    """L-BFGS (two-loop recursion) with steps no longer than ``max_step`` (Adam's longest, ``lr * sqrt(d)``) and
    a backtracking Armijo search from the full step (it never extrapolates); the first step is ``-grad``
    at that length. ``closure`` evaluates at ``x`` and fills ``x.grad``; it raises to end the fit."""
    pairs: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # (s, y, 1 / yᵀs)
    with torch.enable_grad():
        loss = float(closure())
    assert x.grad is not None
    grad = x.grad.detach().clone()
    for _ in range(budget):
        q = -grad.clone()
        alphas = []
        for s_, y_, rho in reversed(pairs):
            a = rho * float((s_ * q).sum())
            alphas.append(a)
            q -= a * y_
        if pairs:
            s_, y_, _ = pairs[-1]
            q *= float((s_ * y_).sum() / (y_ * y_).sum())
        for (s_, y_, rho), a in zip(pairs, reversed(alphas), strict=True):
            q += (a - rho * float((y_ * q).sum())) * s_
        norm = float(q.norm())
        if not pairs or norm > max_step:
            q *= max_step / max(norm, 1e-30)
        slope = float((grad * q).sum())
        if slope >= 0:  # not a descent direction: restart from the gradient
            pairs.clear()
            q = -grad * (max_step / max(float(grad.norm()), 1e-30))
            slope = float((grad * q).sum())
        start, t = x.detach().clone(), 1.0
        while True:
            with torch.no_grad():
                x.copy_(start + t * q)
            with torch.enable_grad():
                new_loss = float(closure())
            if new_loss <= loss + 1e-4 * t * slope or t < 1e-3:
                break
            t *= 0.5
        assert x.grad is not None
        new_grad = x.grad.detach().clone()
        s_, y_ = t * q, new_grad - grad
        ys = float((y_ * s_).sum())
        if ys > 1e-10:
            pairs.append((s_, y_, 1.0 / ys))
            del pairs[:-_HISTORY]
        loss, grad = new_loss, new_grad
