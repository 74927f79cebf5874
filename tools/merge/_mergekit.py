"""Merging HF model directories through mergekit (its Python API), on the CPU, written atomically.

mergekit (arcee-ai/mergekit, pinned 0.1.5) is the field's maintained merging library; its architecture
definitions cover both reference layouts (``GPT2LMHeadModel`` and ``LlamaForCausalLM``), checked by the tests
on the bundled models. Methods (mergekit names): ``linear`` (weighted average), ``task_arithmetic`` (base +
Σ wᵢ·δᵢ), ``ties`` (TIES-merging: trim to ``density``, elect signs, disjoint mean), ``dare_ties`` /
``dare_linear`` (DARE: random drop to ``density`` and rescale), ``slerp`` (two models, ``t``).

Contract of :func:`merge_models`: the inputs are validated first (same tensor names and shapes, finite weights,
output directory absent); the merge is written to a temporary sibling directory and renamed onto ``out`` only
when complete, so ``out`` either holds a whole merged model or does not exist. The base's ``factagent.json``
(prompt format) and ``generation_config.json`` are copied with it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tools.errors import InvalidInputError, MergeError, OutputExistsError

__all__ = ["MERGE_METHODS", "MergeMethod", "MergeSpec", "merge_models"]
logger = logging.getLogger(__name__)

MergeMethod = Literal["linear", "task_arithmetic", "ties", "dare_ties", "dare_linear", "slerp"]
MERGE_METHODS: tuple[MergeMethod, ...] = ("linear", "task_arithmetic", "ties", "dare_ties", "dare_linear", "slerp")
_NEEDS_BASE = frozenset({"task_arithmetic", "ties", "dare_ties", "dare_linear"})
_COPIED = ("factagent.json", "generation_config.json")


@dataclass(frozen=True)
class MergeSpec:
    """How to merge.

    Attributes:
        method: a mergekit method name (:data:`MERGE_METHODS`).
        weights: one weight per model (default: ``1/n`` for ``linear``, ``1.0`` for the delta methods, so that
            task arithmetic keeps every model's whole delta).
        density: fraction of each delta kept by TIES / DARE.
        t: SLERP interpolation factor (0 = first model, 1 = second).
        seed: random seed (DARE's drops).
    """

    method: MergeMethod = "task_arithmetic"
    weights: tuple[float, ...] | None = None
    density: float = 0.5
    t: float = 0.5
    seed: int = 0


def _config(models: Sequence[Path], base: Path | None, spec: MergeSpec) -> dict[str, Any]:
    n = len(models)
    default = 1.0 / n if spec.method == "linear" else 1.0
    weights = spec.weights or tuple(default for _ in models)
    if len(weights) != n:
        raise InvalidInputError(f"{len(weights)} weights for {n} models")
    cfg: dict[str, Any] = {"merge_method": spec.method, "dtype": "float32"}
    if spec.method == "slerp":
        # mergekit's SLERP interpolates from its base_model (the first model) towards the second
        return cfg | {
            "base_model": str(models[0]),
            "parameters": {"t": spec.t},
            "models": [{"model": str(m)} for m in models],
        }
    params: dict[str, Any] = {}
    models_cfg = []
    for m, w in zip(models, weights, strict=True):
        p: dict[str, Any] = {"weight": w}
        if spec.method in ("ties", "dare_ties", "dare_linear"):
            p["density"] = spec.density
        models_cfg.append({"model": str(m), "parameters": p})
    cfg["models"] = models_cfg
    if base is not None and spec.method != "linear":  # mergekit's linear would average the base in, unweighted
        cfg["base_model"] = str(base)
    if spec.method in ("ties", "dare_ties", "task_arithmetic", "dare_linear", "linear"):
        params["normalize"] = False
    cfg["parameters"] = params
    return cfg


def merge_models(
    models: Sequence[str | Path], out: str | Path, *, base: str | Path | None = None, spec: MergeSpec | None = None
) -> Path:
    """Merge ``models`` with mergekit and write the result to the new directory ``out``.

    Args:
        models: HF model directories of one architecture (two for ``slerp``, one or more otherwise).
        out: output directory; must not exist.
        base: the common base model (required by the delta methods; ``linear`` ignores it, ``slerp``
            interpolates between the two models and checks the base's shapes only).
        spec: method and parameters (default: task arithmetic, weight 1 each).

    Returns:
        ``out``, a complete HF model directory.

    Raises:
        OutputExistsError: ``out`` exists (it is left untouched).
        InvalidInputError: bad method, weights, density or model count.
        ModelLoadError, ModelMismatchError, NonFiniteWeightError: a model (or the base) is missing, of another
            architecture or size, or has a NaN/inf weight — checked before anything is written.
        MergeError: mergekit failed; the temporary directory is removed.

    Example:
        >>> merge_models(["v00", "v01"], "merged", base="eval/world/models/gpt2-world")  # doctest: +SKIP
    """
    spec = spec or MergeSpec()
    out = Path(out)
    if out.exists():
        raise OutputExistsError(f"{out} already exists: choose a new output directory")
    if spec.method not in MERGE_METHODS:
        raise InvalidInputError(f"unknown merge method {spec.method!r} (known: {', '.join(MERGE_METHODS)})")
    if not 0.0 < spec.density <= 1.0:
        raise InvalidInputError(f"density must be in (0, 1], got {spec.density}")
    paths = [Path(m) for m in models]
    if not paths or (spec.method == "slerp" and len(paths) != 2):
        raise InvalidInputError(f"{spec.method} needs {'two models' if spec.method == 'slerp' else 'a model'}")
    if len({p.resolve() for p in paths}) != len(paths):
        raise InvalidInputError("the same model is given twice")
    if spec.method in _NEEDS_BASE and base is None:
        raise InvalidInputError(f"{spec.method} needs --base (the common base model)")
    base_path = Path(base) if base is not None else None
    from tools.kinship import open_sources  # torch: not when only MERGE_METHODS is wanted (the CLI's parser)

    sources = open_sources([*([base_path] if base_path else []), *paths])
    for src in sources:  # one streaming pass: NaN / inf anywhere is rejected before mergekit runs
        for name in src.shapes:
            src.tensor(name)
    config = _config(paths, base_path, spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _run(config, tmp / "model", spec.seed)
        ref = base_path or paths[0]
        for name in _COPIED:
            if (ref / name).is_file():
                shutil.copy2(ref / name, tmp / "model" / name)
        if out.exists():
            raise OutputExistsError(f"{out} appeared while merging: the merge is discarded")
        (tmp / "model").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("merged %d models (%s) into %s", len(paths), spec.method, out)
    return out


def _run(config: dict[str, Any], target: Path, seed: int) -> None:
    """Run mergekit on ``config``; its errors (pydantic validation, runtime) become :class:`MergeError`."""
    try:
        from mergekit.config import MergeConfiguration
        from mergekit.merge import run_merge
        from mergekit.options import MergeOptions
    except ImportError as exc:
        raise MergeError("mergekit is not installed: pip install 'factagent[merge]' (mergekit==0.1.5)") from exc

    try:
        merge_config = MergeConfiguration.model_validate({k: v for k, v in config.items() if v is not None})
        options = MergeOptions(
            copy_tokenizer=True, random_seed=seed, quiet=True, write_model_card=False, allow_crimes=False
        )
        run_merge(merge_config, str(target), options=options)
    except (ValueError, RuntimeError, KeyError, OSError) as exc:
        raise MergeError(f"mergekit failed: {exc}") from exc
