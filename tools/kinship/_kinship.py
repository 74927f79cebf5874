"""Model Kinship: how related two fine-tuned (or edited) models are, from their delta parameters.

Following the Model Kinship paper (Hu et al., 2024, "Exploring Model Kinship for Merging Large Language
Models"), each model's *delta* is its weights minus the common base model's, flattened over all tensors; the
kinship of two models is a similarity of their deltas:

* ``pcc`` — Pearson correlation coefficient of the two delta vectors (the paper's main metric);
* ``cosine`` — cosine similarity of the delta vectors;
* ``euclidean`` — Euclidean distance between the delta vectors (a distance: lower is more related).

Everything is computed in one streaming pass: for each tensor name the base tensor and each model's tensor
are read (:mod:`tools.kinship._weights`), and running float64 sums (``Σa, Σb, Σa², Σb², Σab, Σ(a-b)²``) are
kept per pair for the whole model and per layer — memory is one tensor per model, whatever the model size.
A zero delta (a model equal to the base) has no direction: its ``pcc`` and ``cosine`` are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import torch

from tools.errors import InvalidInputError
from tools.kinship._weights import layer_of, open_sources

__all__ = ["DeltaSimilarity", "KinshipReport", "PairKinship", "kinship"]


@dataclass
class _Sums:
    """Running sums over the entries of two delta vectors ``a`` and ``b`` (float64)."""

    n: int = 0
    a: float = 0.0
    b: float = 0.0
    aa: float = 0.0
    bb: float = 0.0
    ab: float = 0.0
    dd: float = 0.0  # Σ(a - b)², kept apart: Σa² + Σb² - 2Σab cancels badly when a ≈ b

    def add(self, da: torch.Tensor, db: torch.Tensor) -> None:
        a, b = da.double().flatten(), db.double().flatten()
        self.n += a.numel()
        self.a += float(a.sum())
        self.b += float(b.sum())
        self.aa += float(a @ a)
        self.bb += float(b @ b)
        self.ab += float(a @ b)
        self.dd += float(((a - b) ** 2).sum())

    def similarity(self) -> DeltaSimilarity:
        nan = float("nan")
        norm = math.sqrt(self.aa * self.bb)
        cosine = self.ab / norm if norm > 0 else nan
        cov = self.ab - self.a * self.b / self.n if self.n else nan
        var = (self.aa - self.a**2 / self.n) * (self.bb - self.b**2 / self.n) if self.n else nan
        pcc = cov / math.sqrt(var) if self.n and var > 0 else nan
        return DeltaSimilarity(pcc=pcc, cosine=cosine, euclidean=math.sqrt(max(self.dd, 0.0)), n=self.n)


@dataclass(frozen=True)
class DeltaSimilarity:
    """Similarity of two delta vectors: ``pcc`` and ``cosine`` in [-1, 1] (higher is more related; NaN when a
    delta is zero), ``euclidean`` >= 0 (lower is more related); ``n`` entries compared."""

    pcc: float
    cosine: float
    euclidean: float
    n: int

    def to_json(self) -> dict[str, Any]:
        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {"pcc": clean(self.pcc), "cosine": clean(self.cosine), "euclidean": self.euclidean, "n": self.n}


@dataclass(frozen=True)
class PairKinship:
    """Kinship of models ``a`` and ``b`` (paths): whole model and per layer (``"layer i"`` / ``"other"``)."""

    a: str
    b: str
    whole: DeltaSimilarity
    per_layer: dict[str, DeltaSimilarity] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, **self.whole.to_json()} | {
            "per_layer": {k: v.to_json() for k, v in self.per_layer.items()}
        }


@dataclass(frozen=True)
class KinshipReport:
    """Pairwise kinship of ``models`` against ``base``; ``pairs`` in ``itertools.combinations`` order."""

    base: str
    models: tuple[str, ...]
    pairs: tuple[PairKinship, ...]
    seconds: float

    def pair(self, a: str, b: str) -> PairKinship:
        """The pair of these two models, in either order; raises ``KeyError`` if absent."""
        for p in self.pairs:
            if {p.a, p.b} == {a, b}:
                return p
        raise KeyError((a, b))

    def to_json(self) -> dict[str, Any]:
        """The first pair's figures at the top level (``pcc``, ``cosine``, ``euclidean``, ``per_layer``), and
        every pair under ``pairs``."""
        first = self.pairs[0].to_json()
        return {
            "base": self.base,
            "models": list(self.models),
            "pcc": first["pcc"],
            "cosine": first["cosine"],
            "euclidean": first["euclidean"],
            "per_layer": first["per_layer"],
            "pairs": [p.to_json() for p in self.pairs],
            "seconds": self.seconds,
        }


def kinship(models: Sequence[str | Path], base: str | Path) -> KinshipReport:
    """Pairwise Model Kinship (PCC, cosine, Euclidean of delta parameters) of two or more models.

    Args:
        models: two or more HF model directories fine-tuned or edited from ``base``.
        base: the common base model directory.

    Returns:
        A :class:`KinshipReport`, one :class:`PairKinship` per unordered pair, whole model and per layer.

    Raises:
        InvalidInputError: fewer than two models.
        ModelLoadError: a directory (the base included) is missing or has no readable weights.
        ModelMismatchError: the models and the base differ in tensor names or shapes.
        NonFiniteWeightError: a tensor of a model or of the base holds NaN or inf.

    Example:
        >>> report = kinship(["variants/v00", "variants/v01"], base="eval/world/models/gpt2-world")  # doctest: +SKIP
        >>> report.pairs[0].whole.pcc  # doctest: +SKIP
    """
    import time

    if len(models) < 2:
        raise InvalidInputError(f"kinship needs at least two models, got {len(models)}")
    start = time.perf_counter()
    base_src, *srcs = open_sources([base, *models])
    pairs = list(combinations(range(len(srcs)), 2))
    whole = {p: _Sums() for p in pairs}
    layers: dict[tuple[int, int], dict[str, _Sums]] = {p: {} for p in pairs}
    for name in base_src.shapes:
        ref = base_src.tensor(name)
        deltas = [s.tensor(name) - ref for s in srcs]  # one tensor per model in memory
        layer = layer_of(name)
        for i, j in pairs:
            whole[i, j].add(deltas[i], deltas[j])
            layers[i, j].setdefault(layer, _Sums()).add(deltas[i], deltas[j])
    names = [str(s.path) for s in srcs]
    result = tuple(
        PairKinship(
            a=names[i],
            b=names[j],
            whole=whole[i, j].similarity(),
            per_layer={k: v.similarity() for k, v in sorted(layers[i, j].items(), key=lambda kv: _layer_key(kv[0]))},
        )
        for i, j in pairs
    )
    return KinshipReport(
        base=str(base_src.path), models=tuple(names), pairs=result, seconds=time.perf_counter() - start
    )


def _layer_key(label: str) -> tuple[int, int]:
    return (0, int(label.split()[1])) if label.startswith("layer ") else (1, 0)
