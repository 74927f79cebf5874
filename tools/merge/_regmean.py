"""RegMean (Jin et al., ICLR 2023, "Dataless Knowledge Fusion by Merging Weights of Language Models") for
edited variants of one base: each edited linear layer merged by the Gram matrices of its inputs.

RegMean merges ``N`` models' linear layers so that the merged layer reproduces each model's outputs on that
model's own data, in least squares: with ``G_i = X_iᵀ X_i`` the Gram matrix of the layer's inputs on model
``i``'s data, ``W* = (Σ W_i G_i)(Σ G_i)⁻¹`` (``(out, in)`` layout; GPT-2's ``Conv1D`` stores ``(in, out)``:
``W* = (Σ G_i)⁻¹ (Σ G_i W_i)``). Every other tensor is merged as task arithmetic at weight 1 does
(``base + Σ δ_i``; a MEMIT or AlphaEdit variant changes no other tensor, so they stay the base's).

**The data of an edited variant is known exactly.** A MEMIT variant's update of a layer solves
``δ_i (λ C + K_i K_iᵀ) = R_i K_iᵀ`` (:mod:`tools.edit._memit`): ``K_i`` ``(in, m)`` are its edits' keys (every
templated column), ``C`` the second moment of the layer's keys over the world corpus (the preserved knowledge)
and ``R_i`` the residuals. Its data is the corpus (weighted ``λ``) plus its edits, so ``G_i = λ C + K_i K_iᵀ``
(:class:`~tools.edit.EditGram`: ``shared = λ C``, ``keys = K_i``). AlphaEdit's solve has the same form with
``shared = P λ C P + α I`` and ``keys = P K_i``.

**Which Gram matrices: the shared part counted once** (``shared_scale=1``, the default). Plain RegMean over
``G_i = S + K_i K_iᵀ`` (``S`` the shared part) gives, with ``W_i = W_0 + δ_i``::

    W* = W_0 + (Σ δ_i G_i)(N S + Σ K_i K_iᵀ)⁻¹ = W_0 + (Σ R_i K_iᵀ)(N λ C + Σ K_i K_iᵀ)⁻¹

— a joint MEMIT solve of all ``N`` variants' edits with the corpus weighted ``N λ``: the corpus is one data set
that every variant preserves, but it is counted ``N`` times, which pulls every edit ``N`` times harder towards
the base. Counting it once (the variants' union of data: the corpus once, every variant's edits)::

    W* = W_0 + (Σ δ_i G_i)(S + Σ K_i K_iᵀ)⁻¹ = W_0 + (Σ R_i K_iᵀ)(λ C + Σ K_i K_iᵀ)⁻¹

which is exactly MEMIT's closed form for all the variants' keys and residuals at once (the residuals each
variant fitted alone; not a re-fit). It is RegMean over the variants with ``G_i`` plus the base with Gram
``-(N - 1) S``. With one variant it returns that variant. ``shared_scale=None`` is plain RegMean (``N S``);
any ``s > 0`` gives ``W_0 + (Σ δ_i G_i)(s S + Σ K_i K_iᵀ)⁻¹``, a joint solve with the corpus weighted ``s λ``
(between the joint solve, ``s = 1``, and plain RegMean, ``s = N``: a knob like task arithmetic's weight,
but one that shrinks the updates most where the corpus's keys lie).

**Why not through mergekit**: mergekit 0.1.5's extension point (``mergekit.merge_methods.easy_define``'s
``merge_method`` and the registry) hands a kernel the tensors of one weight name from each model and per-model
*scalar* parameters only (``BatchParameter`` accepts a ``bool``, ``int`` or ``float``; a tensor coefficient is
refused), and its architecture definitions read only the architecture's own tensors, so a per-model ``(in,
in)`` Gram matrix has no way in. The merge is therefore written here, on the same contract as
:func:`~tools.merge.merge_models`: inputs validated first, the result written to a temporary sibling directory
and renamed onto ``out`` when complete.

Files: ``factagent variants`` (``--method memit`` / ``alphaedit``) writes beside each variant's weights
``regmean.safetensors`` (``<weight>.keys`` ``(in, m)`` and ``<weight>.shared`` ``(in, in)``, float64) and
``regmean.json`` (format, editor, each weight's layout), :func:`save_edit_grams`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tools.errors import InvalidInputError, ModelMismatchError, OutputExistsError

if TYPE_CHECKING:
    import torch

    from tools.edit import EditGram
    from tools.kinship import WeightSource

__all__ = ["REGMEAN_FILES", "load_edit_grams", "regmean_merge", "save_edit_grams"]
logger = logging.getLogger(__name__)

_TENSORS = "regmean.safetensors"
_META = "regmean.json"
REGMEAN_FILES = (_TENSORS, _META)
_FORMAT = 1
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")


def save_edit_grams(model_dir: str | Path, grams: Mapping[str, EditGram], *, editor: str) -> None:
    """Write ``grams`` (weight name -> :class:`~tools.edit.EditGram`) beside the model in ``model_dir``."""
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    tensors = {}
    layouts = {}
    for name, g in grams.items():
        tensors[f"{name}.keys"] = g.keys.double().contiguous().cpu()
        tensors[f"{name}.shared"] = g.shared.double().contiguous().cpu()
        layouts[name] = g.layout
    save_file(tensors, str(model_dir / _TENSORS), metadata={"format": str(_FORMAT)})
    meta = {"format": _FORMAT, "editor": editor, "weights": layouts}
    (model_dir / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_edit_grams(model_dir: str | Path) -> dict[str, EditGram]:
    """The RegMean data written by :func:`save_edit_grams`.

    Raises:
        InvalidInputError: the directory has none (a population built before it was saved, or by an editor
            without a closed-form solve: ROME, FT) or it is malformed.
    """
    from safetensors import safe_open

    from tools.edit import EditGram

    model_dir = Path(model_dir)
    if not (model_dir / _META).is_file() or not (model_dir / _TENSORS).is_file():
        raise InvalidInputError(
            f"{model_dir}: no RegMean data ({_META}); regmean merges variants built by `factagent variants "
            "--method memit` or `alphaedit` since it saves their edit keys (rebuild the population)"
        )
    try:
        meta = json.loads((model_dir / _META).read_text(encoding="utf-8"))
        if meta.get("format") != _FORMAT:
            raise InvalidInputError(f"{model_dir}: RegMean data of format {meta.get('format')!r}, not {_FORMAT}")
        grams = {}
        with safe_open(str(model_dir / _TENSORS), framework="pt") as handle:
            for name, layout in meta["weights"].items():
                if layout not in ("out_in", "in_out"):
                    raise InvalidInputError(f"{model_dir}: unknown layout {layout!r} of {name}")
                keys, shared = handle.get_tensor(f"{name}.keys"), handle.get_tensor(f"{name}.shared")
                if keys.ndim != 2 or shared.shape != (keys.shape[0], keys.shape[0]):
                    raise InvalidInputError(f"{model_dir}: RegMean data of {name} has inconsistent shapes")
                grams[name] = EditGram(keys=keys, shared=shared, layout=layout)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise InvalidInputError(f"{model_dir}: unreadable RegMean data ({exc})") from exc
    return grams


def regmean_merge(
    models: Sequence[str | Path], out: str | Path, *, base: str | Path, shared_scale: float | None = 1.0
) -> Path:
    """Merge edited variants of ``base`` by RegMean (module docstring) into the new directory ``out``.

    Args:
        models: variant directories, each with its RegMean data (:func:`save_edit_grams`).
        out: output directory; must not exist.
        base: the common base model.
        shared_scale: how many times the Gram matrices' shared (corpus) part is counted: 1 (default: a joint
            solve of all edits), ``None`` once per variant (plain RegMean), or any ``s > 0``.

    Returns:
        ``out``, a complete HF model directory (the first model's config, tokenizer and prompt format).

    Raises:
        OutputExistsError: ``out`` exists (left untouched).
        InvalidInputError: no model, the same model twice, a model without RegMean data, variants whose data
            cover different weights or whose shared parts differ (not solved against the same base statistics).
        ModelLoadError, ModelMismatchError, NonFiniteWeightError: as :func:`~tools.merge.merge_models`.
        MergeError: a Gram sum is singular.

    Example:
        >>> regmean_merge(["pop/v00", "pop/v01"], "merged", base="eval/world/models/llama-world")  # doctest: +SKIP
    """
    out = Path(out)
    if out.exists():
        raise OutputExistsError(f"{out} already exists: choose a new output directory")
    paths = [Path(m) for m in models]
    if not paths:
        raise InvalidInputError("regmean needs a model")
    if shared_scale is not None and not (math.isfinite(shared_scale) and shared_scale > 0):
        raise InvalidInputError(f"shared_scale must be a positive number, got {shared_scale}")
    if len({p.resolve() for p in paths}) != len(paths):
        raise InvalidInputError("the same model is given twice")
    from tools.kinship import open_sources

    sources = open_sources([Path(base), *paths])
    grams = [load_edit_grams(p) for p in paths]
    names = set(grams[0])
    for p, g in zip(paths[1:], grams[1:], strict=True):
        if set(g) != names:
            raise InvalidInputError(f"{p} and {paths[0]} carry RegMean data for different weights")
    for name in names:
        if name not in sources[0].shapes:
            raise ModelMismatchError(f"RegMean data names {name!r}, which the base does not have")
    scale = float(len(paths)) if shared_scale is None else shared_scale
    merged = {name: _merge_tensor(name, sources, grams, scale) for name in sources[0].shapes}
    _write(merged, out, paths[0])
    logger.info("regmean merge of %d models into %s (shared part x %g)", len(paths), out, scale)
    return out


def _merge_tensor(
    name: str, srcs: Sequence[WeightSource], grams: Sequence[Mapping[str, EditGram]], scale: float
) -> torch.Tensor:
    """One merged tensor (float32): RegMean for a weight with Gram data, ``base + Σ δ_i`` otherwise.

    ``srcs`` are the base, then the variants (``grams`` in the same order).
    """
    import torch

    from tools.errors import MergeError

    base = srcs[0].tensor(name).double()
    deltas = [s.tensor(name).double() - base for s in srcs[1:]]
    if name not in grams[0]:
        return (base + sum(deltas, torch.zeros_like(base))).float()
    parts = [g[name] for g in grams]
    shared = parts[0].shared
    for i, part in enumerate(parts[1:], start=1):
        if not torch.allclose(part.shared, shared, rtol=1e-6, atol=1e-9 * float(shared.abs().max())):
            raise InvalidInputError(
                f"{srcs[i + 1].path}: the shared part of {name}'s Gram matrix differs from {srcs[1].path}'s "
                "(variants solved against different statistics or settings cannot be merged by regmean)"
            )
    layout = parts[0].layout
    if any(p.layout != layout for p in parts):
        raise InvalidInputError(f"the variants disagree on the layout of {name}")
    denom = scale * shared  # (in, in)
    numer = torch.zeros_like(base)
    for d, p in zip(deltas, parts, strict=True):
        denom = denom + p.keys @ p.keys.T
        # (out, in) layout: Σ δ_i G_i, solved as numer denom⁻¹; Conv1D's (in, out): Σ G_i δ_i, as denom⁻¹ numer
        numer = numer + (d @ p.gram() if layout == "out_in" else p.gram() @ d)
    transposed = layout == "out_in"  # denom is symmetric: numer denom⁻¹ = (denom⁻¹ numerᵀ)ᵀ
    solved = torch.linalg.solve(denom, numer.T).T if transposed else torch.linalg.solve(denom, numer)
    if not bool(torch.isfinite(solved).all()):
        raise MergeError(f"regmean: the Gram sum of {name} is singular")
    return (base + solved).float()


def _write(tensors: Mapping[str, torch.Tensor], out: Path, like: Path) -> None:
    """Write ``tensors`` as ``out/model.safetensors`` with ``like``'s other files (config, tokenizer), atomically."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model = tmp / "model"
        model.mkdir()
        for f in like.iterdir():
            if f.is_file() and f.name not in _WEIGHTS and f.name not in REGMEAN_FILES:
                shutil.copy2(f, model / f.name)
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(model / "model.safetensors"), metadata={"format": "pt"}
        )
        if out.exists():
            raise OutputExistsError(f"{out} appeared while merging: the merge is discarded")
        model.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
