"""The editing benchmark: T edits applied to a fresh model, then every edited fact scored (KnowEdit metrics).

For each ``T``: the model is loaded fresh from disk, the first ``T`` selected cases are edited one after
another (``edit_mode="sequential"``: one ``compute`` + ``apply`` per fact, each computed on the model holding
the previous edits) or in batches (``edit_mode="batch"``: ``batch_size`` facts per call, default all ``T`` in
one call — MEMIT's default), and only after the last edit are all ``T`` facts scored. Locality and the
generalization filter compare with the unedited model, probed once before any edit.

Case selection (:func:`select_cases`): the cases are shuffled with ``seed``; with ``select="known"`` (the
default, KnowEdit practice) only cases whose edit prompt the unedited model answers with the old object (greedy,
exact match) are kept; the first ``n`` (default ``max(T)``) are used, and edit ``T`` uses the first ``T`` of them.
A ``T`` above the number of selected cases is capped to it (the row's ``T_requested`` keeps the asked value).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from eval.editing._checkpoint import BenchCheckpoint, RunState, fingerprint
from eval.editing._metrics import (
    MODES,
    BeforeEdit,
    CaseLike,
    LMProber,
    aggregate,
    answer_matches,
    fluency,
    measure_after,
    measure_before,
    old_answer,
    score_case,
)
from tools.errors import InvalidInputError, NotEnoughEditsError
from tools.lm import LocalLanguageModel

__all__ = ["BATCH_METHODS", "EXTRA_KEYS", "REQUIRED_KEYS", "default_edit_mode", "run_edit_bench", "select_cases"]
logger = logging.getLogger(__name__)

EditMode = Literal["auto", "sequential", "batch", "single"]
Selection = Literal["known", "all"]
REQUIRED_KEYS = (
    "method",
    "model",
    "T",
    "mode",
    "n",
    "reliability",
    "generalization",
    "locality",
    "locality_vs_truth",
    "portability",
    "fluency",
    "seconds_per_edit",
)
EXTRA_KEYS = (
    "T_requested",  # the T asked for (T is capped to the number of selected cases)
    "edit_mode",  # "sequential" (one edit call per fact), "batch", or "single" (each fact alone, rolled back)
    "batch_size",  # facts per edit call (1 when sequential)
    "selection",  # "known" or "all" (see select_cases)
    "generalization_all",  # over every paraphrase, not only those the unedited model answered correctly
    "generalization_cases",  # cases with at least one paraphrase counted by generalization
    "portability_by_kind",  # kind -> portability over that kind's prompts
)
BATCH_METHODS = frozenset({"alphaedit", "memit"})  # methods whose default is one batch of all T edits


def default_edit_mode(method: str) -> Literal["sequential", "batch"]:
    """``"batch"`` for MEMIT and AlphaEdit (many facts in one update), ``"sequential"`` for every other method."""
    return "batch" if method.strip().lower() in BATCH_METHODS else "sequential"


def select_cases(
    lm: LocalLanguageModel,
    cases: Sequence[CaseLike],
    n: int,
    *,
    seed: int = 0,
    select: Selection = "known",
    chunk: int = 64,
) -> list[CaseLike]:
    """A seeded sample of at most ``n`` cases (fewer when not enough qualify).

    Args:
        lm: the *unedited* model (probed with greedy generation when ``select="known"``).
        cases: the pool.
        n: how many to return.
        seed: the shuffle's seed; the same seed gives the same cases (and the same order) on the same model.
        select: ``"known"`` keeps only cases whose edit prompt the model answers with the old object; ``"all"``
            keeps every case.
        chunk: at most this many prompts generated per call while filtering (twice the number still missing,
            at least 8: most cases qualify, so a small ``n`` costs little).

    Raises:
        InvalidInputError: ``n < 1`` or an unknown ``select``.
    """
    if n < 1:
        raise InvalidInputError(f"n must be >= 1, got {n}")
    if select not in ("known", "all"):
        raise InvalidInputError(f"select must be 'known' or 'all', got {select!r}")
    order = list(cases)
    random.Random(seed).shuffle(order)
    if select == "all":
        return order[:n]
    prober = LMProber(lm)
    chosen: list[CaseLike] = []
    start = 0
    while start < len(order) and len(chosen) < n:
        size = min(chunk, max(8, 2 * (n - len(chosen))))
        part = [c for c in order[start : start + size] if old_answer(c) is not None]
        start += size
        longest = max((len(lm.tokenizer(" " + (old_answer(c) or ""))["input_ids"]) for c in part), default=0)
        answers = prober.answers([c.request.prompt for c in part], max_new_tokens=longest + 2)
        for case, answer in zip(part, answers, strict=True):
            if len(chosen) < n and answer_matches(answer, old_answer(case) or ""):
                chosen.append(case)
    return chosen


def without_edited_neighbours(cases: Sequence[CaseLike]) -> list[CaseLike]:
    """The cases with every locality prompt dropped that mentions a subject edited in this run.

    In sequential editing a neighbour of one edit can be the subject of another (the world's neighbourhoods
    are other subjects of the same relation); its answer then *should* change, so it cannot measure locality.
    """
    subjects = {c.request.subject for c in cases}
    out: list[CaseLike] = []
    for case in cases:
        kept = tuple(p for p in case.locality if not any(s in p[0] for s in subjects))
        if len(kept) != len(case.locality) and dataclasses.is_dataclass(case):
            case = dataclasses.replace(case, locality=kept)
        out.append(case)
    return out


def _apply_edits(
    lm: LocalLanguageModel,
    editor: Any,
    cases: Sequence[CaseLike],
    batch_size: int,
    on_edit: Callable[[int], None] | None,
    start: int = 0,
    after_call: Callable[[int, float], None] | None = None,
) -> float:
    """Compute and apply the edits ``cases[start:]`` in order, ``batch_size`` requests per call; returns their
    wall time. ``after_call(done, seconds)`` runs after each call, outside the timing (checkpoints)."""
    seconds = 0.0
    for lo in range(start, len(cases), batch_size):
        began = time.perf_counter()
        batch = [c.request for c in cases[lo : lo + batch_size]]
        editor.apply(lm, editor.compute(lm, batch))
        if on_edit is not None:
            on_edit(len(batch))
        seconds += time.perf_counter() - began
        if after_call is not None:
            after_call(lo + len(batch), seconds)
    return seconds


def _t_plan(t_values: Sequence[int], available: int) -> list[tuple[int, int]]:
    """(requested T, effective T) pairs, capped to ``available``, duplicates of an effective T dropped."""
    plan: list[tuple[int, int]] = []
    seen: set[int] = set()
    for t in t_values:
        eff = min(t, available)
        if eff < t:
            logger.warning("T=%d capped to %d: only %d cases were selected", t, eff, available)
        if eff in seen:
            logger.warning("T=%d gives T=%d again after capping; skipped", t, eff)
            continue
        seen.add(eff)
        plan.append((t, eff))
    return plan


def _check_plan(method: str, t_values: Sequence[int], edit_mode: EditMode, batch_size: int | None) -> EditMode:
    """The edit mode to run (``auto`` resolved for ``method``) once the T values, mode and batch size are checked.

    Raises:
        InvalidInputError: a T below 1 or not an integer, an unknown mode, a batch size below 1.
    """
    if not t_values or any(not isinstance(t, int) or t < 1 for t in t_values):
        raise InvalidInputError(f"T values must be integers >= 1, got {list(t_values)}")
    if edit_mode not in ("auto", "sequential", "batch", "single"):
        raise InvalidInputError(f"edit_mode must be 'auto', 'sequential', 'batch' or 'single', got {edit_mode!r}")
    if batch_size is not None and batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    return default_edit_mode(method) if edit_mode == "auto" else edit_mode


def _select(
    lm: LocalLanguageModel,
    method: str,
    cases: Sequence[CaseLike],
    n: int,
    strict_t: int | None,
    seed: int,
    select: Selection,
) -> list[CaseLike]:
    """The ``n`` cases to edit (:func:`select_cases`), their neighbours that are edited themselves dropped.

    Raises:
        InvalidInputError: no case qualifies.
        NotEnoughEditsError: ``strict_t`` (the largest T, when it must not be capped) is above the cases that
            qualify.
    """
    chosen = select_cases(lm, cases, n, seed=seed, select=select)
    if not chosen:
        hint = " (cases without an old answer never qualify for 'known': use select='all')" if select == "known" else ""
        raise InvalidInputError(f"no edit case qualifies (select={select!r}, {len(cases)} cases in the pool){hint}")
    logger.info("%s: %d cases selected (%s) from %d", method, len(chosen), select, len(cases))
    if strict_t is not None and strict_t > len(chosen):
        raise NotEnoughEditsError(
            f"T={strict_t} needs {strict_t} edits, but only {len(chosen)} of {len(cases)} qualify "
            f"(select={select!r}) on {lm.name}"
        )
    return without_edited_neighbours(chosen)


def run_edit_bench(
    lm_path: str | Path,
    method: str,
    T_values: Sequence[int],  # noqa: N803  (the benchmark's T, as in the papers)
    n: int | None,
    cases: Sequence[CaseLike],
    *,
    edit_mode: EditMode = "auto",
    batch_size: int | None = None,
    select: Selection = "known",
    seed: int = 0,
    corpus: Sequence[str] | None = None,
    corpus_name: str = "",
    cache_dir: str | Path | None = None,
    device: str | None = None,
    hparams: Mapping[str, Any] | None = None,
    answer_tokens: int = 24,
    fluency_tokens: int = 40,
    warmup: bool = True,
    on_edit: Callable[[int], None] | None = None,
    strict_t: bool = False,
    checkpoint: BenchCheckpoint | None = None,
) -> list[dict[str, Any]]:
    """Edit a fresh copy of the model ``T`` times for each ``T`` and score the edited facts after the last edit.

    Args:
        lm_path: local HF model directory (one written by ``tools.edit.save_edited`` keeps its earlier edits).
        method: editor name (``tools.edit.editor_names()``).
        T_values: numbers of edits (each run on a freshly loaded model).
        n: how many cases to select (default ``max(T_values)``).
        cases: the pool of edit cases (``eval.editing.world_edit_cases`` or a loaded dataset).
        edit_mode: ``"sequential"``, ``"batch"``, or ``"auto"`` (:func:`default_edit_mode`).
        batch_size: requests per edit call in batch mode (default: all ``T`` at once).
        select: case selection, see :func:`select_cases`.
        seed: selection seed.
        corpus, corpus_name, cache_dir: passed to the editor (statistics for ROME/MEMIT/WISE).
        device: where to load the model (default: the best available).
        hparams: hyperparameter overrides for the editor.
        answer_tokens, fluency_tokens: generation lengths of answers and of fluency texts.
        warmup: compute (and discard) one edit before timing, so that one-off work — ROME/MEMIT's key statistics,
            cached afterwards — is not counted in ``seconds_per_edit``.
        on_edit: called with the number of facts after each edit call (progress bars).
        strict_t: a ``T`` above the number of selected cases raises instead of being capped.
        checkpoint: save the run's state there every ``checkpoint.every`` edits and after each ``T``, and go on
            from a state saved by the same command (:mod:`eval.editing._checkpoint`; not with ``"single"``).

    Returns:
        Two rows per effective ``T`` (``mode`` ``"teacher_forced"`` and ``"generation"``) with
        :data:`REQUIRED_KEYS` and :data:`EXTRA_KEYS`; ``n`` is the number of facts edited and scored;
        ``seconds_per_edit`` is the compute + apply wall time divided by ``T``; ``fluency`` (generation-based)
        is the same in both rows.

    Raises:
        InvalidInputError: bad ``T`` values, ``n``, modes, or no case qualifies.
        NotEnoughEditsError: with ``strict_t``, a ``T`` above the cases that qualify (before any edit).
        CheckpointMismatchError: ``checkpoint`` holds the state of a different command (before any edit).
        UnknownEditorError: no editor by that name.
        ModelLoadError: the model directory cannot be loaded.

    Example:
        >>> rows = run_edit_bench("eval/world/models/gpt2-world", "rome", [1, 10], None, cases)  # doctest: +SKIP
    """
    from tools.edit import get_editor, load_edited

    # 1. check the plan (nothing loaded yet)
    t_values = list(T_values)
    mode = _check_plan(method, t_values, edit_mode, batch_size)
    if checkpoint is not None and mode == "single":
        raise InvalidInputError("a checkpoint needs sequential or batch editing, not edit_mode='single'")
    editor = get_editor(method, corpus=corpus, corpus_name=corpus_name, cache_dir=cache_dir, **dict(hparams or {}))

    # 2. select the cases and measure them on the unedited model
    lm = load_edited(lm_path, device=device)  # a plain model directory, or one saved with earlier edits
    chosen = _select(lm, method, cases, n or max(t_values), max(t_values) if strict_t else None, seed, select)
    state = RunState()
    if checkpoint is not None:  # refuse another command's state before the costly work
        settings: dict[str, Any] = {"method": method, "model": str(Path(lm_path).resolve()), "mode": mode}
        settings |= {"T": t_values, "n": n}
        settings |= {"batch_size": batch_size, "select": select, "seed": seed, "hparams": dict(hparams or {})}
        settings |= {"corpus_name": corpus_name, "answer_tokens": answer_tokens, "fluency_tokens": fluency_tokens}
        state = checkpoint.open(fingerprint(settings, chosen))
    baseline = measure_before(LMProber(lm, answer_tokens=answer_tokens), chosen)
    if warmup:
        editor.compute(lm, [chosen[0].request])  # no side effect on the model; fills the editor's caches

    # 3. edit and score: each case alone, or T edits on a fresh copy per T
    rows: list[dict[str, Any]] = list(state.rows)
    if mode == "single":  # the ROME/KnowEdit single-edit protocol: T = 1, averaged over n independent edits
        common = {"method": method, "model": lm.name, "T": 1, "n": len(chosen), "T_requested": 1}
        common |= {"edit_mode": mode, "batch_size": 1, "selection": select}
        return _single_rows(lm, editor, chosen, baseline, answer_tokens, fluency_tokens, common, on_edit)
    name = lm.name  # a T resumed from a checkpoint loads the model from the checkpoint's directory
    unedited: LocalLanguageModel | None = lm  # edited by the first T, then each T loads fresh weights
    del lm
    for i, (t_requested, t) in enumerate(_t_plan(t_values, len(chosen))):
        if i < state.t_index:  # scored before the run was stopped (its rows are in state.rows)
            continue
        size = 1 if mode == "sequential" else min(batch_size or t, t)
        edited, start, before = _start_t(unedited, lm_path, device, i, state, checkpoint)
        unedited = None
        if on_edit is not None and start:
            on_edit(start)  # the edits made before the stop count in the progress
        after_call = None if checkpoint is None else _saver(checkpoint, state, edited, i, t, before)
        seconds = before + _apply_edits(edited, editor, chosen[:t], size, on_edit, start, after_call)
        rows.extend(
            _rows(
                edited,
                chosen[:t],
                baseline[:t],
                answer_tokens,
                fluency_tokens,
                {
                    "method": method,
                    "model": name,
                    "T": t,
                    "n": t,
                    "seconds_per_edit": seconds / t,
                    "T_requested": t_requested,
                    "edit_mode": mode,
                    "batch_size": size,
                    "selection": select,
                },
            )
        )
        if checkpoint is not None:  # this T is scored: the next starts from the unedited model
            state.rows, state.t_index, state.done, state.seconds = list(rows), i + 1, 0, 0.0
            checkpoint.save(state, None)
        del edited  # free the edited copy before the next one is loaded
        gc.collect()
    return rows


def _start_t(
    lm: LocalLanguageModel | None,
    lm_path: str | Path,
    device: str | None,
    index: int,
    state: RunState,
    checkpoint: BenchCheckpoint | None,
) -> tuple[LocalLanguageModel, int, float]:
    """The model to edit for T number ``index``, the cases already edited in it and their edit seconds.

    Without a saved state for this T: ``lm`` when it is still the unedited model (the first T), else a fresh
    load. With one, the saved edited model, and the RNG states as they were when it was saved (restored after
    loading when the model is loaded from the checkpoint, before the fresh load at a T's start, as in an
    uninterrupted run).
    """
    from tools.edit import load_edited

    resumed = checkpoint is not None and index == state.t_index and state.rng is not None
    saved = checkpoint.model_dir(state) if checkpoint is not None and resumed else None
    if saved is not None:
        lm = load_edited(saved, device=device)
        checkpoint.restore(state)  # type: ignore[union-attr]  # set with saved
        return lm, state.done, state.seconds
    if resumed:
        checkpoint.restore(state)  # type: ignore[union-attr]
    if lm is None:  # fresh weights for every T after the first (which gets the model probed, still unedited)
        lm = load_edited(lm_path, device=device)
    return lm, 0, 0.0


def _saver(
    checkpoint: BenchCheckpoint, state: RunState, lm: LocalLanguageModel, index: int, t: int, before: float
) -> Callable[[int, float], None]:
    """``after_call(done, seconds)`` for :func:`_apply_edits`: saves the edited model once ``checkpoint.every``
    edits were made since the last save (not after the T's last call: the scored rows are saved instead)."""
    last = [state.done if index == state.t_index else 0]

    def after_call(done: int, seconds: float) -> None:
        if done < t and done - last[0] >= checkpoint.every:
            state.t_index, state.done, state.seconds = index, done, before + seconds
            checkpoint.save(state, lm)
            last[0] = done

    return after_call


def _single_rows(
    lm: LocalLanguageModel,
    editor: Any,
    cases: Sequence[CaseLike],
    baseline: Sequence[BeforeEdit],
    answer_tokens: int,
    fluency_tokens: int,
    common: dict[str, Any],
    on_edit: Callable[[int], None] | None,
) -> list[dict[str, Any]]:
    """Each case edited alone on the unedited model, scored, then rolled back (exactly, by the journal)."""
    from tools.edit import journal_for

    prober = LMProber(lm, answer_tokens=answer_tokens, fluency_tokens=fluency_tokens)
    after, texts, seconds = [], [], 0.0
    for case in cases:
        seconds += _apply_edits(lm, editor, [case], 1, on_edit)
        after.extend(measure_after(prober, [case]))
        texts.extend(prober.free_text([case.request.prompt]))
        journal_for(lm.model).rollback_all()
    flu = fluency(texts)
    rows = []
    for mode in MODES:
        scores = aggregate([score_case(c, b, a, mode) for c, b, a in zip(cases, baseline, after, strict=True)])
        values = common | scores | {"mode": mode, "fluency": flu, "seconds_per_edit": seconds / max(1, len(cases))}
        rows.append({k: values[k] for k in REQUIRED_KEYS} | {k: values[k] for k in EXTRA_KEYS})
    return rows


def _rows(
    lm: LocalLanguageModel,
    cases: Sequence[CaseLike],
    baseline: Sequence[BeforeEdit],
    answer_tokens: int,
    fluency_tokens: int,
    common: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Score the edited model on ``cases``: one row per mode, keys in :data:`REQUIRED_KEYS` order first."""
    prober = LMProber(lm, answer_tokens=answer_tokens, fluency_tokens=fluency_tokens)
    after = measure_after(prober, cases)
    flu = fluency(prober.free_text([c.request.prompt for c in cases]))
    rows = []
    for mode in MODES:
        scores = aggregate([score_case(c, b, a, mode) for c, b, a in zip(cases, baseline, after, strict=True)])
        values = dict(common) | scores | {"mode": mode, "fluency": flu}
        rows.append({k: values[k] for k in REQUIRED_KEYS} | {k: values[k] for k in EXTRA_KEYS})
    return rows
