"""``factagent circuits``: the knowledge circuit of one fact, of a relation, or the benchmark of both models.

- ``--subject S --relation R``: the fact's circuit (EAP-IG, corrupted run = another subject of R), written as
  ``<out>/<model>/<relation>--<subject>.{svg,png,json}``; a summary line, or the JSON record with ``--json``.
- ``--relation R`` alone: the circuits of ``--n`` KNOWN facts of R (default 10), their faithfulness curves in
  one plot (``<relation>-faithfulness.png``), the gold object through the layers for facts answered correctly
  vs not (``<relation>-lens.png``), the relation's mean-score circuit as SVG/PNG, all records as JSON.
- ``--bench``: every KNOWN fact of every relation (or ``--n`` per relation) on each model of ``--models``
  (default both reference models), then the ROME rows at the default vs the circuit-located layer on the same
  ``--edits`` edits; prints a table, or with ``--json`` one object per model (``model``, ``n_facts``,
  ``share_faithful_at_10pct``, ``median_seconds_per_fact``, ``auto_layer``, ``default_layer``, ...), and writes
  each relation's faithfulness plot and the model's ``hallucination-lens.png``.

Each fact's circuit is cached on disk (``OUT/cache``, keyed by model and settings; ``--no-cache`` to recompute),
so an interrupted ``--bench`` resumes. ``--mean-ablation`` also measures every circuit with the edges outside it
mean-ablated (each node's output averaged over up to 8 other subjects' prompts of the same length) beside
corrupt ablation.

Unknown subject or relation, a model directory that cannot be loaded or wrapped: ``error: ...``, exit 2,
nothing written. A prompt whose gold object is not the model's top token is still analysed and reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from agent.cli._args import positive_int
from tools.errors import InvalidInputError

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``circuits`` command."""
    p = sub.add_parser(
        "circuits",
        help="knowledge circuits: which heads, MLPs and edges carry a fact (EAP-IG)",
        description="Find the circuit of a fact (--subject --relation), of a relation (--relation), or run the "
        "benchmark (--bench) with edge attribution patching with integrated gradients over the full graph; "
        "faithfulness = (circuit - corrupted) / (full - corrupted) as kept edges grow.",
    )
    p.add_argument("--model", help="'gpt2', 'llama' or a local model directory (default: gpt2)")
    p.add_argument("--models", default="gpt2,llama", help="--bench: comma-separated models (default: gpt2,llama)")
    p.add_argument("--subject", help="the fact's subject, e.g. 'AMD'")
    p.add_argument("--relation", help="a world relation id, e.g. company_ceo")
    p.add_argument(
        "--n", type=positive_int, help="facts per relation (relation mode: default 10; --bench: every KNOWN fact)"
    )
    p.add_argument("--steps", type=positive_int, default=5, help="integrated-gradient steps (default 5)")
    p.add_argument(
        "--selection",
        choices=("greedy", "top"),
        default="greedy",
        help="kept edges: greedy from the logits (default) or the top edges regardless of connection",
    )
    p.add_argument(
        "--rank", choices=("signed", "abs"), default="signed", help="edge order: by score (default) or |score|"
    )
    p.add_argument(
        "--mean-ablation", action="store_true", help="also measure faithfulness with mean- (not only corrupt-) ablation"
    )
    p.add_argument("--seed", type=int, default=0, help="fact sampling and corrupted-subject seed")
    p.add_argument("--out", type=Path, help="output directory (default: <home>/reports/circuits)")
    p.add_argument("--compare", help="one fact: a second model (e.g. an edited copy) whose circuit is compared")
    p.add_argument("--answer", help="one fact: analyse this object instead of the world's (e.g. an edit's new one)")
    p.add_argument("--context", action="store_true", help="one fact: state the fact in context before the cloze")
    p.add_argument("--bench", action="store_true", help="benchmark every relation on each of --models")
    p.add_argument(
        "--edits",
        type=int,
        default=100,
        help="--bench: ROME edits compared at the default vs the circuit-located layer (0: skip; default 100)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="--bench: recompute every circuit (default: cached per fact in OUT/cache)",
    )
    p.add_argument("--json", action="store_true", help="print only JSON")
    p.set_defaults(func=_circuits)


def _model_dir(name: str | None) -> Path:
    from eval.world import MODEL_NAMES, MODELS_DIR

    name = name or "gpt2"
    return MODELS_DIR / MODEL_NAMES[name] if name in MODEL_NAMES else Path(name)


def _finder(model: str | None, args: argparse.Namespace) -> tuple[Any, str]:
    from tools.circuits import CircuitFinder
    from tools.lm import HFLanguageModel

    lm = HFLanguageModel.load(_model_dir(model), device="cpu")
    finder = CircuitFinder(
        lm.model,
        lm.tokenizer,
        steps=args.steps,
        selection=args.selection,
        rank=args.rank,
        mean_ablation=args.mean_ablation,
    )
    return finder, lm.name


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "x"


def _circuits(args: argparse.Namespace) -> int:
    from agent.config import open_home
    from eval.world import DATA_DIR, load_world

    if args.bench and (args.subject or args.relation):
        raise InvalidInputError("--bench takes no --subject / --relation")
    if not args.bench and not args.relation:
        raise InvalidInputError("give --relation (with --subject for one fact), or --bench")
    world = load_world(DATA_DIR)
    if args.relation and args.relation not in {r.id for r in world.relations}:
        known = ", ".join(sorted(r.id for r in world.relations))
        raise InvalidInputError(f"unknown relation {args.relation!r} (known: {known})")
    home = open_home(args.home)
    out = args.out or home.root / "reports" / "circuits"
    if args.bench:
        return _bench(args, world, out, home)
    if args.subject:
        return _one_fact(args, world, out)
    return _one_relation(args, world, out)


def _one_fact(args: argparse.Namespace, world: Any, out: Path) -> int:
    from eval.circuits import fact_case, find_fact
    from tools.circuits import circuit_record, plot_circuit
    from tools.lm import PromptFormat

    fact = find_fact(world, args.relation, args.subject)  # validated before loading the model
    if args.answer is not None and not args.answer.strip():
        raise InvalidInputError("--answer is empty")
    finder, name = _finder(args.model, args)
    other = _finder(args.compare, args) if args.compare else None
    fmt = PromptFormat.load(_model_dir(args.model)) if args.context else None
    case = fact_case(world, fact, finder.tokenizer, seed=args.seed, context=fmt, answer=args.answer)
    circuit = finder.find(case)
    record = {"model": name, "relation": fact.relation, "fact_id": fact.id, **circuit_record(circuit)}
    if other is not None:
        record["compare"] = _compare(circuit, other[0].find(case), other[1])
    stem = out / name / f"{fact.relation}--{_slug(fact.subject)}{'--context' if args.context else ''}"
    g = finder.graph
    plot_circuit(circuit, g.n_layers, g.n_heads, [stem.with_suffix(".svg"), stem.with_suffix(".png")])
    _write_json(stem.with_suffix(".json"), record)
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return 0
    if not circuit.gold_is_top:
        print(f"note: the model's top token is {circuit.top_token!r}, not {case.answer!r} (analysed anyway)")
    print(
        f"{case.prompt!r} -> {case.answer!r} (corrupted: {case.corrupt_subject!r}): {len(circuit.edges)}/"
        f"{circuit.n_edges_total} edges, faithfulness {circuit.faithfulness:.3f} in {circuit.seconds:.2f}s; "
        f"written {stem}.{{svg,png,json}}"
    )
    if circuit.mean_curve:
        mean = dict((k, v) for _, k, v in circuit.mean_curve)
        print(f"  mean ablation: faithfulness {mean.get(len(circuit.edges), float('nan')):.3f} with the same edges")
    if circuit.lens is not None:
        lens = circuit.lens
        depths = ", ".join(f"{p:.2f} (rank {r})" for p, r in zip(lens.logprob, lens.rank, strict=True))
        print(f"  gold object by depth (logit lens log p): {depths}; moved until depth {lens.moved_until}")
    for e in circuit.edges[:10]:
        print(f"  {e.upstream:>8} -> {e.downstream:<12} {e.score:+.3f}")
    if "compare" in record:
        cmp = record["compare"]
        print(
            f"vs {cmp['model']}: faithfulness {cmp['faithfulness']:.3f}, kept-edge Jaccard {cmp['jaccard']:.2f} "
            f"({len(cmp['gained'])} gained, {len(cmp['lost'])} lost); largest score changes:"
        )
        for c in cmp["changed"]:
            print(f"  {c['upstream']:>8} -> {c['downstream']:<12} {c['before']:+.3f} -> {c['after']:+.3f}")
    return 0


def _compare(circuit: Any, other: Any, other_name: str) -> dict[str, Any]:
    from tools.circuits import compare_circuits

    diff = compare_circuits(circuit, other)
    return {
        "model": other_name,
        "faithfulness": other.faithfulness,
        "metric_clean": other.attribution.metric_clean,
        "gold_is_top": other.gold_is_top,
        "jaccard": diff.jaccard,
        "gained": [list(e) for e in diff.gained],
        "lost": [list(e) for e in diff.lost],
        "changed": [{"upstream": u, "downstream": d, "before": a, "after": b} for u, d, a, b in diff.changed],
    }


def _mean_circuit(circuits: list[Any]) -> Any:
    """One drawing for a relation: edges by mean score over its facts, kept as many as the median circuit."""
    from tools.circuits import Edge

    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for c in circuits:
        for e in c.attribution.edges:
            scores[(e.upstream, e.downstream)].append(e.score)
    mean = sorted(
        (Edge(upstream=u, downstream=d, score=statistics.fmean(v)) for (u, d), v in scores.items()),
        key=lambda e: -abs(e.score),
    )
    k = int(statistics.median(len(c.edges) for c in circuits))
    kept = tuple(mean[:k])
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for c in circuits:
        for node, role in c.roles.items():
            votes[node][role] += 1
    names = {e.upstream for e in kept} | {
        e.downstream.rsplit(".", 1)[0] if e.downstream.count(".") == 2 else e.downstream for e in kept
    }
    roles = {
        n: (votes[n].most_common(1)[0][0] if votes[n] else ("mlp" if n.startswith("m") else "relation_head"))
        for n in names
    }
    return dataclasses.replace(
        circuits[0], edges=kept, roles=roles, faithfulness=statistics.median(c.faithfulness for c in circuits)
    )


def _one_relation(args: argparse.Namespace, world: Any, out: Path) -> int:
    from eval.circuits import relation_circuits
    from tools.circuits import circuit_record, plot_circuit, plot_faithfulness

    finder, name = _finder(args.model, args)
    rc = relation_circuits(finder, world, args.relation, args.n or 10, seed=args.seed)
    if not rc.circuits:
        raise InvalidInputError(f"no known fact of {args.relation!r} has a corrupted twin")
    g = finder.graph
    stem = out / name / args.relation
    plot_faithfulness(
        [c.curve for c in rc.circuits],
        stem.with_name(f"{args.relation}-faithfulness.png"),
        f"{name} {args.relation}",
        mean_curves=[c.mean_curve for c in rc.circuits],
    )
    _plot_lens(list(rc.circuits), stem.with_name(f"{args.relation}-lens.png"), f"{name} {args.relation}")
    mean = _mean_circuit(list(rc.circuits))
    title = f"{name} {args.relation}: mean scores over {len(rc.circuits)} facts, {len(mean.edges)} edges"
    plot_circuit(mean, g.n_layers, g.n_heads, [stem.with_suffix(".svg"), stem.with_suffix(".png")], title=title)
    record = {
        "model": name,
        "relation": args.relation,
        "n_facts": len(rc.circuits),
        "share_faithful_at_10pct": rc.share_faithful,
        "share_faithful_at_10pct_mean_ablation": rc.share_faithful_mean_ablation,
        "mlp_ranking_at_subject": rc.mlp_ranking(),
        "circuits": [circuit_record(c) for c in rc.circuits],
    }
    _write_json(stem.with_suffix(".json"), record)
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        print(
            f"{name} {args.relation}: {len(rc.circuits)} facts, {rc.share_faithful:.0%} reach faithfulness >= 0.70 "
            f"with <= 10% of edges; MLPs by attribution at the subject: {rc.mlp_ranking()}; written {stem}.*"
        )
    return 0


def _plot_lens(circuits: list[Any], path: Path, title: str) -> None:
    """The gold object through the layers, facts answered correctly vs not (hallucinated)."""
    from tools.circuits import plot_lens

    groups = {
        "correct": [c.lens for c in circuits if c.gold_is_top and c.lens is not None],
        "hallucinated": [c.lens for c in circuits if not c.gold_is_top and c.lens is not None],
    }
    plot_lens(groups, path, f"{title}: the gold object at the last position, by layer")


def _print_lens(split: dict[str, Any]) -> None:
    """The per-layer contrast of correct and hallucinated facts, as a table."""
    groups = [(k, v) for k, v in split.items() if v.get("n")]
    if not groups or "lens_gold_logprob_by_depth" not in groups[0][1]:
        return
    depths = len(groups[0][1]["lens_gold_logprob_by_depth"])
    print("  gold object at the last position, by depth (0 = embeddings): lens log p / median rank / direct")
    print("  contribution of the block's heads + MLP to logit(gold) - logit(foil)")
    for label, vals in groups:
        heads, mlps = vals["heads_into_logit_diff_by_layer"], vals["mlps_into_logit_diff_by_layer"]
        cells = []
        for d in range(depths):
            block = "" if d == 0 else f" h{heads[d - 1]:+.2f} m{mlps[d - 1]:+.2f}"
            logp, rank = vals["lens_gold_logprob_by_depth"][d], vals["lens_gold_rank_by_depth"][d]
            cells.append(f"d{d} {logp:.2f}/{rank:g}{block}")
        print(f"  {label:>12} (n={vals['n']}, moved until depth {vals['moved_until_mean']:.2f}): " + "; ".join(cells))


def _bench(args: argparse.Namespace, world: Any, out: Path, home: Any) -> int:
    from tqdm import tqdm

    from eval.circuits import CircuitCache, circuit_bench
    from tools.circuits import plot_faithfulness

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows = []
    for model in models:
        finder, name = _finder(model, args)
        total = args.n * len(world.relations) if args.n else len(world.facts_in("known"))
        with tqdm(total=total, desc=f"circuits {name}", unit="fact", file=sys.stderr, disable=None) as bar:
            cache = None if args.no_cache else CircuitCache(out / "cache", name, finder, seed=args.seed)
            row, per = circuit_bench(
                finder, world, name, n_per_relation=args.n, seed=args.seed, on_fact=bar.update, cache=cache
            )
        for rc in per:
            if rc.circuits:
                plot_faithfulness(
                    [c.curve for c in rc.circuits],
                    out / name / f"{rc.relation}-faithfulness.png",
                    f"{name} {rc.relation}",
                    mean_curves=[c.mean_curve for c in rc.circuits],
                )
        every = [c for rc in per for c in rc.circuits]
        _plot_lens(every, out / name / "hallucination-lens.png", name)
        row["settings"] = {
            "steps": args.steps,
            "selection": args.selection,
            "rank": args.rank,
            "mean_ablation": args.mean_ablation,
            "facts_per_relation": args.n or "all known",
            "seed": args.seed,
        }
        if args.edits > 0:
            row |= _rome_rows(args, model, name, world, out, home)
        rows.append(row)
    _write_json(out / "bench.json", rows)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for row in rows:
            print(
                f"{row['model']}: {row['n_facts']} facts, share faithful (>= 0.70 at <= 10% edges) "
                f"{row['share_faithful_at_10pct']:.3f}, relations at >= 80%: {row['relations_meeting_target']}/"
                f"{row['n_relations']}, median {row['median_seconds_per_fact']:.2f}s per fact"
            )
            if args.mean_ablation:
                print(
                    f"  mean ablation: share faithful {row['share_faithful_at_10pct_mean_ablation']:.3f}, relations "
                    f"at >= 80%: {row['relations_meeting_target_mean_ablation']}/{row['n_relations']}"
                )
            _print_lens(row["correct_vs_hallucinated"])
            for label in ("default_layer", "auto_layer"):
                for mode, vals in row.get(label, {}).items():
                    figures = ", ".join(f"{k} {vals[k]:.3f}" for k in ("reliability", "generalization", "locality"))
                    print(f"  rome {label} ({mode}, n={vals['n']}): {figures}")
    return 0


def _rome_rows(args: argparse.Namespace, model: str, name: str, world: Any, out: Path, home: Any) -> dict[str, Any]:
    """ROME at the default vs the located layer on the same ``--edits`` edits; the rows are cached in
    ``OUT/cache`` (whole, once both are measured) so that a resumed ``--bench`` does not edit again."""
    from tqdm import tqdm

    from eval.circuits import CACHE_VERSION, rome_layer_rows

    cached = out / "cache" / f"rome-v{CACHE_VERSION}-{name}-edits{args.edits}-seed{args.seed}.json"
    if cached.is_file() and not args.no_cache:
        return dict(json.loads(cached.read_text(encoding="utf-8")))
    with tqdm(total=2 * args.edits, desc=f"rome {name}", unit="edit", file=sys.stderr, disable=None) as bar:
        rows = rome_layer_rows(
            _model_dir(model),
            world,
            n_edits=args.edits,
            seed=args.seed,
            cache_dir=home.path("cache") / "stats",
            on_edit=bar.update,
        )
    _write_json(cached, rows)
    return rows


def _write_json(path: Path, record: Any) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, ensure_ascii=False)
    os.replace(tmp, path)
