"""The circuit benchmark: how compact and faithful are the circuits of KNOWN facts, per relation.

For each relation, its KNOWN facts (all of them, or a seeded sample of ``n``; those without a valid corrupted
twin, see :func:`eval.circuits.fact_case`, are skipped and counted) get their circuit; a fact counts as faithful
at 10% when some circuit keeping at most 10% of the graph's edges reaches faithfulness 0.70 (the issue's target:
for >= 80% of facts per relation), under corrupt ablation and, when the finder measures it, mean ablation.
Facts whose gold object is not the model's top token are analysed and counted too; ``share_gold_is_top`` reports
how many are, and ``correct_vs_hallucinated`` contrasts the two groups layer by layer (logit lens and direct
attribution of the gold object at the last position, :class:`tools.circuits.LayerLens`).
"""

from __future__ import annotations

import logging
import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.circuits._cache import CircuitCache
from eval.circuits._cases import fact_case, relation_facts
from eval.world import World
from tools.circuits import Ablation, Circuit, CircuitFinder
from tools.errors import InvalidInputError

__all__ = ["RelationCircuits", "circuit_bench", "relation_circuits", "rome_layer_rows"]

logger = logging.getLogger(__name__)

TARGET = 0.7
MAX_FRACTION = 0.1


@dataclass(frozen=True)
class RelationCircuits:
    """The circuits of a relation's sampled facts, and the facts that had no corrupted twin."""

    relation: str
    circuits: tuple[Circuit, ...]
    skipped: tuple[str, ...] = field(default=())

    @property
    def share_faithful(self) -> float:
        return _share(self.circuits, "corrupt")

    @property
    def share_faithful_mean_ablation(self) -> float:
        return _share(self.circuits, "mean")

    def mlp_ranking(self) -> list[int]:
        """MLP layers by decreasing mean attribution at the subject's last token (knowledge location)."""
        n = len(self.circuits[0].attribution.mlp_at_subject) if self.circuits else 0
        means = [statistics.fmean(c.attribution.mlp_at_subject[i] for c in self.circuits) for i in range(n)]
        return sorted(range(n), key=lambda i: -means[i])


def _share(circuits: Sequence[Circuit], ablation: Ablation) -> float:
    """Share of ``circuits`` faithful at 10%; NaN without circuits or without that ablation's curves."""
    measured = [c for c in circuits if (c.curve if ablation == "corrupt" else c.mean_curve)]
    if not measured:
        return float("nan")
    return sum(c.faithful_at(MAX_FRACTION, TARGET, ablation=ablation) for c in measured) / len(measured)


def relation_circuits(
    finder: CircuitFinder,
    world: World,
    relation: str,
    n: int | None,
    *,
    seed: int = 0,
    on_fact: Callable[[], None] | None = None,
    cache: CircuitCache | None = None,
) -> RelationCircuits:
    """Circuits of up to ``n`` seeded KNOWN facts of ``relation`` (``None``: every KNOWN fact).

    ``on_fact`` is called once per fact tried (analysed or skipped), for progress bars; ``cache`` keeps each
    fact's circuit on disk and serves it again instead of recomputing it.
    """
    facts = relation_facts(world, relation)
    random.Random(f"{seed}:{relation}").shuffle(facts)
    circuits: list[Circuit] = []
    skipped: list[str] = []
    for fact in facts:
        if n is not None and len(circuits) >= n:
            break
        try:
            case = fact_case(world, fact, finder.tokenizer, seed=seed)
        except InvalidInputError as exc:
            logger.info("%s: %s", fact.id, exc)
            skipped.append(fact.id)
            if on_fact is not None and n is None:
                on_fact()
            continue
        circuit = cache.get(fact.id) if cache is not None else None
        if circuit is None:
            circuit = finder.find(case, target=TARGET, kept_fraction=MAX_FRACTION)
            if cache is not None:
                cache.put(fact.id, circuit)
        circuits.append(circuit)
        if on_fact is not None:
            on_fact()
    return RelationCircuits(relation=relation, circuits=tuple(circuits), skipped=tuple(skipped))


def circuit_bench(
    finder: CircuitFinder,
    world: World,
    model_name: str,
    *,
    n_per_relation: int | None,
    seed: int = 0,
    relations: Sequence[str] | None = None,
    on_fact: Callable[[], None] | None = None,
    cache: CircuitCache | None = None,
) -> tuple[dict[str, Any], list[RelationCircuits]]:
    """The benchmark row of one model (the issue's machine-readable fields) and each relation's circuits.

    ``n_per_relation=None`` analyses every KNOWN fact of each relation.
    """
    rel_ids = list(relations) if relations else [r.id for r in world.relations]
    per = [
        relation_circuits(finder, world, r, n_per_relation, seed=seed, on_fact=on_fact, cache=cache) for r in rel_ids
    ]
    circuits = [c for rc in per for c in rc.circuits]
    shares = {rc.relation: rc.share_faithful for rc in per if rc.circuits}
    mean_shares = {rc.relation: rc.share_faithful_mean_ablation for rc in per if rc.circuits}
    row: dict[str, Any] = {
        "model": model_name,
        "n_facts": len(circuits),
        "share_faithful_at_10pct": _share(circuits, "corrupt"),
        "relations_meeting_target": sum(s >= 0.8 for s in shares.values()),
        "n_relations": len(shares),
        "share_faithful_at_10pct_by_relation": shares,
        "share_faithful_at_10pct_mean_ablation": _share(circuits, "mean"),
        "relations_meeting_target_mean_ablation": sum(s >= 0.8 for s in mean_shares.values()),
        "share_faithful_at_10pct_mean_ablation_by_relation": mean_shares,
        "share_gold_is_top": sum(c.gold_is_top for c in circuits) / max(1, len(circuits)),
        "median_seconds_per_fact": statistics.median(c.seconds for c in circuits) if circuits else None,
        "n_edges_total": circuits[0].n_edges_total if circuits else 0,
        "skipped_no_corrupt_twin": sum(len(rc.skipped) for rc in per),
        "correct_vs_hallucinated": {
            "correct": _contrast([c for c in circuits if c.gold_is_top]),
            "hallucinated": _contrast([c for c in circuits if not c.gold_is_top]),
        },
    }
    return row, per


def _into_logits(circuit: Circuit, kind: str) -> float:
    """The share of the attribution into the logits that comes from ``kind`` nodes (heads ``.h``, MLPs ``m``)."""
    edges = [e for e in circuit.attribution.edges if e.downstream == "logits"]
    total = sum(e.score for e in edges)
    part = sum(e.score for e in edges if (".h" in e.upstream if kind == "head" else e.upstream.startswith("m")))
    return part / total if abs(total) > 1e-9 else float("nan")


def _contrast(circuits: Sequence[Circuit]) -> dict[str, Any]:
    """Where the object is moved to the answer: mean shares of the attribution into the logits by heads
    (mover heads) and by MLPs, the mean logit difference and faithfulness (the paper's hallucination analysis)."""
    if not circuits:
        return {"n": 0}
    out: dict[str, Any] = {
        "n": len(circuits),
        "heads_into_logits": statistics.fmean(_into_logits(c, "head") for c in circuits),
        "mlps_into_logits": statistics.fmean(_into_logits(c, "mlp") for c in circuits),
        "metric_clean": statistics.fmean(c.attribution.metric_clean for c in circuits),
        "faithfulness": statistics.fmean(c.faithfulness for c in circuits),
    }
    lenses = [c.lens for c in circuits if c.lens is not None]
    if lenses:
        depths = len(lenses[0].logprob)
        out["lens_gold_logprob_by_depth"] = [statistics.fmean(x.logprob[d] for x in lenses) for d in range(depths)]
        out["lens_gold_rank_by_depth"] = [statistics.median(x.rank[d] for x in lenses) for d in range(depths)]
        out["heads_into_logit_diff_by_layer"] = [
            statistics.fmean(x.heads[i] for x in lenses) for i in range(depths - 1)
        ]
        out["mlps_into_logit_diff_by_layer"] = [statistics.fmean(x.mlps[i] for x in lenses) for i in range(depths - 1)]
        counts = Counter(x.moved_until for x in lenses)
        out["moved_until_depth"] = {str(d): counts.get(d, 0) for d in range(depths)}
        out["moved_until_mean"] = statistics.fmean(x.moved_until for x in lenses)
    return out


ROW_KEYS = ("reliability", "generalization", "locality")


def rome_layer_rows(
    model_dir: Path,
    world: World,
    *,
    n_edits: int,
    seed: int = 0,
    cache_dir: Path | None = None,
    locator_facts: int = 10,
    on_edit: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """ROME on the same ``n_edits`` world edits (single-edit protocol, each rolled back) with the default layer
    and with ``layers="auto"`` (the relation's circuit); each row per scoring mode (teacher-forced, greedy)."""
    from eval.circuits._cases import relation_case_source
    from eval.editing import run_edit_bench, world_edit_cases
    from tools.circuits import CircuitLocator
    from tools.lm import PromptFormat

    cases = list(world_edit_cases(world, PromptFormat.load(model_dir)))
    corpus = [d.text for d in world.documents]
    locator = CircuitLocator(relation_case_source(world, n=locator_facts, seed=seed))
    out: dict[str, Any] = {}
    for label, hparams in (("default_layer", {}), ("auto_layer", {"layers": "auto", "locator": locator})):
        rows = run_edit_bench(
            model_dir,
            "rome",
            [1],
            n_edits,
            cases,
            edit_mode="single",
            seed=seed,
            corpus=corpus,
            corpus_name="world-documents",
            cache_dir=cache_dir,
            device="cpu",
            hparams=hparams,
            on_edit=on_edit,
        )
        out[label] = {r["mode"]: {k: r[k] for k in ("n", *ROW_KEYS)} for r in rows}
    out["auto_layer_by_relation"] = {rel: ranking[0] for rel, ranking in sorted(locator.chosen.items())}
    return out
