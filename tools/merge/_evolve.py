"""Top-k greedy merging with Model Kinship (Hu et al., 2024, "Exploring Model Kinship for Merging LLMs").

The paper's procedure, on a population of models fine-tuned (here: edited) from one base:

1. every model of the initial population is scored by the fitness function;
2. each generation, the ``k`` fittest models are merged pairwise (every pair not merged before), and the
   merged models are scored and join the population;
3. **kinship exploration**: when a generation does not raise the best fitness (a local optimum), the best
   model is also merged with the model of *lowest* kinship (PCC of delta parameters) to it among those it has
   not been merged with, which moves the search towards unexplored directions;
4. after ``generations`` generations the fittest model is returned, with the lineage of every merge.

``explore=False`` is the plain top-k greedy baseline. Merging, fitness and kinship are passed in, so the
loop itself is independent of any dataset; merged directories are written under ``workdir``.

**Members** (``merge_members=True``, the default): every node records the initial variants whose deltas it
carries, and the merge of two nodes is the merge of the *union* of their members, each counted once. With
task arithmetic (weight 1) that is base + the sum of the member variants' deltas: merging two models that share
a parent (``v0+v1`` with ``v0+v2``) would otherwise add the shared delta twice, which on edited variants
over-writes those edits and damages the rest of the model. A merge whose member set is already in the
population (or equals a parent's) makes no new model and is skipped. ``merge_members=False`` merges the two
parent models themselves (the paper's literal procedure, kept for comparison).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Literal, Protocol

from tools.errors import InvalidInputError

__all__ = ["EvolveResult", "Fitness", "FitnessFunction", "LineageNode", "evolve"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fitness:
    """A model's score: ``fitness`` (higher is better, the quantity selection uses) and its parts."""

    fitness: float
    edit_reliability: float
    locality: float
    known_accuracy: float

    def to_json(self) -> dict[str, float]:
        return {
            "fitness": self.fitness,
            "edit_reliability": self.edit_reliability,
            "locality": self.locality,
            "known_accuracy": self.known_accuracy,
        }


class FitnessFunction(Protocol):
    """Scores a model directory; higher ``fitness`` is better. Must be deterministic for a given directory."""

    def __call__(self, model_dir: Path, /) -> Fitness: ...


@dataclass(frozen=True)
class LineageNode:
    """One model of the search: an initial variant (``parents == ()``) or the merge of two ``parents``.

    ``kinship`` is the PCC of the parents' deltas (``None`` for variants); ``how`` says why it was made;
    ``members`` are the initial variants whose deltas the model carries (itself, for a variant).
    """

    name: str
    path: str
    generation: int
    fitness: Fitness
    parents: tuple[str, ...] = ()
    kinship: float | None = None
    how: Literal["variant", "top_k", "explore"] = "variant"
    members: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "generation": self.generation,
            "parents": list(self.parents),
            "kinship": self.kinship,
            "how": self.how,
            "members": list(self.members),
            **self.fitness.to_json(),
        }


@dataclass(frozen=True)
class EvolveResult:
    """The search: every node, the best one, and per generation the best and top-k mean fitness."""

    nodes: tuple[LineageNode, ...]
    best: LineageNode
    generations: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    explore: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "explore": self.explore,
            "best": self.best.to_json(),
            "generations": list(self.generations),
            "nodes": [n.to_json() for n in self.nodes],
        }


MergeFunction = Callable[[Sequence[Path], Path], Path]  # (parents, out) -> out
KinshipFunction = Callable[[Path, Path], float]  # PCC of two models' deltas


def evolve(
    population: Sequence[str | Path],
    *,
    workdir: str | Path,
    fitness: FitnessFunction,
    merge: MergeFunction,
    kinship: KinshipFunction,
    k: int = 3,
    generations: int = 3,
    explore: bool = True,
    merge_members: bool = True,
    on_step: Callable[[LineageNode], None] | None = None,
) -> EvolveResult:
    """Run top-k greedy merging (with kinship exploration unless ``explore=False``).

    Args:
        population: the initial model directories (at least two).
        workdir: directory for merged models (``g{generation}-{i}``); created.
        fitness: scores a model directory.
        merge: writes the merge of its parents to ``out`` and returns it.
        kinship: PCC of two models' deltas against the common base.
        k: how many of the fittest models are merged pairwise each generation (>= 2).
        generations: number of generations (>= 1).
        explore: merge the best with its lowest-kinship partner when a generation does not improve.
        merge_members: merge the union of the parents' initial variants (module docstring); ``False``: the two
            parent models.
        on_step: called with each new node (progress).

    Returns:
        An :class:`EvolveResult`; ``best`` is the fittest node seen (ties: the earliest).

    Raises:
        InvalidInputError: fewer than two models, ``k < 2`` or ``generations < 1``.
    """
    if len(population) < 2 or k < 2 or generations < 1:
        raise InvalidInputError(
            f"evolve needs >= 2 models, k >= 2 and generations >= 1 (got {len(population)}, {k}, {generations})"
        )
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    nodes: list[LineageNode] = []
    paths: dict[str, Path] = {}  # initial variant name -> directory
    for p in population:
        name = Path(p).name
        paths[name] = Path(p)
        node = LineageNode(name=name, path=str(p), generation=0, fitness=fitness(Path(p)), members=(name,))
        nodes.append(node)
        if on_step:
            on_step(node)
    if len(paths) != len(nodes):
        raise InvalidInputError("the population's model directories must have distinct names")
    merged: set[frozenset[str]] = set()
    history: list[dict[str, Any]] = [_summary(0, nodes, k)]

    def members(a: LineageNode, b: LineageNode) -> tuple[str, ...]:
        union = set(a.members) | set(b.members)
        return tuple(n for n in paths if n in union)  # population order

    def novel(a: LineageNode, b: LineageNode) -> bool:
        """Not merged before and, when merging members, a member set the population does not hold yet."""
        if frozenset((a.name, b.name)) in merged:
            return False
        if not merge_members:
            return True
        union = frozenset(members(a, b))
        return all(frozenset(n.members) != union for n in nodes)

    def make(a: LineageNode, b: LineageNode, gen: int, how: Literal["top_k", "explore"], pcc: float) -> LineageNode:
        out = work / f"g{gen}-{sum(1 for n in nodes if n.generation == gen)}"
        both = members(a, b)
        sources = [paths[m] for m in both] if merge_members else [Path(a.path), Path(b.path)]
        path = merge(sources, out)
        merged.add(frozenset((a.name, b.name)))
        node = LineageNode(
            name=out.name, path=str(path), generation=gen, fitness=fitness(path), parents=(a.name, b.name),
            kinship=pcc, how=how, members=both,
        )  # fmt: skip
        nodes.append(node)
        if on_step:
            on_step(node)
        return node

    for gen in range(1, generations + 1):
        best_before = _best(nodes).fitness.fitness
        top = sorted(nodes, key=lambda n: -n.fitness.fitness)[:k]
        for a, b in combinations(top, 2):
            if novel(a, b):
                make(a, b, gen, "top_k", kinship(Path(a.path), Path(b.path)))
        if explore and _best(nodes).fitness.fitness <= best_before:
            best = _best(nodes)
            partners = [n for n in nodes if n.name != best.name and novel(best, n)]
            if partners:
                scored = [(kinship(Path(best.path), Path(n.path)), n) for n in partners]
                pcc, partner = min(scored, key=lambda s: s[0] if not math.isnan(s[0]) else math.inf)
                logger.info(
                    "generation %d stalled: exploring %s x %s (kinship %.3f)", gen, best.name, partner.name, pcc
                )
                make(best, partner, gen, "explore", pcc)
        history.append(_summary(gen, nodes, k))
    return EvolveResult(nodes=tuple(nodes), best=_best(nodes), generations=tuple(history), explore=explore)


def _best(nodes: Sequence[LineageNode]) -> LineageNode:
    return max(nodes, key=lambda n: n.fitness.fitness)  # max keeps the first of equals


def _summary(gen: int, nodes: Sequence[LineageNode], k: int) -> dict[str, Any]:
    top = sorted((n.fitness.fitness for n in nodes), reverse=True)[:k]
    return {"generation": gen, "best": top[0], "top_k_mean": sum(top) / len(top), "population": len(nodes)}
