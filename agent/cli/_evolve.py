"""``factagent variants`` (edited variants of a reference model), ``factagent evolve`` (Top-k greedy merging
with Model Kinship) and ``factagent merge-gain`` (the paper's merge gain vs kinship analysis).

``evolve --population DIR --k 3 --generations G --fitness world:dev --out OUT`` runs the search twice — with
kinship exploration and without (plain top-k greedy) — and, for comparison in the same run, scores the best
single variant and the plain average (mergekit ``linear``) of all variants. A merge consolidates the union of
its parents' variants, each delta weighted by ``--weight`` (default 1: task arithmetic's sum of deltas; these
small models' ROME updates overshoot, and 0.4-0.5 interferes less: README); ``--merge-parents`` merges the
two parent models instead. ``--method regmean`` merges MEMIT / AlphaEdit variants by their saved Gram data
(:func:`tools.merge.regmean_merge`, the corpus part counted ``--regmean-scale`` times; ``--weight`` unused).
``OUT`` (new; written to a
temporary directory, then renamed) receives ``best/`` (the evolved model), ``lineage.json`` (every node of
both searches: parents, kinship, fitness; per-generation scores), ``lineage.png`` and ``summary.json``
(``best``, ``best_single_variant``, ``average_merge``, ``no_exploration``, ``base``; each with ``fitness``,
``edit_reliability``, ``locality``, ``known_accuracy``), which ``--json`` prints.

``merge-gain --population DIR --pairs 30 --overlapping 15 --out OUT`` merges pairs of variants and pairs of
two-variant merges that share one variant (``vi+vj`` with ``vi+vk``, merged as ``vi+vj+vk``: the shared delta
once, as ``evolve`` merges), and reports merge gain (merged fitness minus the mean of its parents') against the
parents' kinship (PCC; about 0 for unrelated variants, about 0.5 for merges sharing a variant): ``gain.json``
with the Pearson correlation, and ``gain.png`` (scatter).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli._args import key_values, positive_int
from tools.errors import InvalidInputError, OutputExistsError

if TYPE_CHECKING:  # tools.merge imports torch: not while the CLI builds its parser (cold start)
    from tools.merge import Fitness

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``variants``, ``evolve`` and ``merge-gain`` commands."""
    from tools.merge import MERGE_METHODS

    var = sub.add_parser(
        "variants",
        help="build N edited variants of a model, each with a disjoint batch of the world's edits",
        description="Each variant is the base model with its own disjoint, seeded batch of the world's EDITS "
        "(edits the base answers correctly before editing) applied by a weight editor (rome, memit, ft-l, "
        "ft-m; GRACE and WISE keep edits in adapters that no merge carries).",
    )
    var.add_argument("--model", type=Path, required=True, help="the base model directory")
    var.add_argument("--n", type=positive_int, default=10, help="number of variants (default 10)")
    var.add_argument("--edits", type=positive_int, default=20, help="edits per variant (default 20)")
    var.add_argument(
        "--method", default="rome", help="weight editor: rome, memit, alphaedit, ft-l, ft-m (default rome)"
    )
    var.add_argument("--seed", type=int, default=0, help="edit shuffling seed")
    var.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="editor hyperparameter override (JSON value), e.g. kl_factor=1.0; repeatable",
    )
    var.add_argument("--out", type=Path, required=True, help="new population directory")
    var.set_defaults(func=_variants)

    evo = sub.add_parser(
        "evolve",
        help="Top-k greedy merging with Model Kinship exploration over a population of variants",
        description="Merge the top-k variants pairwise each generation; when the best fitness stalls, merge the "
        "best with its lowest-kinship partner. Runs the search without exploration too, and scores the best "
        "single variant and the plain average merge in the same run.",
    )
    evo.add_argument("--population", type=Path, nargs="+", required=True, help="population directories")
    evo.add_argument("--k", type=positive_int, default=3, help="top-k models merged pairwise per generation")
    evo.add_argument("--generations", type=positive_int, default=3, help="generations")
    evo.add_argument("--fitness", default="world:dev", help="fitness: world:dev (the only one)")
    evo.add_argument(
        "--method",
        choices=(*MERGE_METHODS, "regmean"),
        default="task_arithmetic",
        help="merge method: a mergekit one, or regmean (MEMIT / AlphaEdit populations; --weight is not used)",
    )
    evo.add_argument("--density", type=float, default=0.5, help="fraction of each delta kept by ties / dare")
    evo.add_argument(
        "--regmean-scale", type=float, default=1.0, help="regmean: times the corpus Gram part is counted (default 1)"
    )
    evo.add_argument("--weight", type=float, default=1.0, help="weight of each variant's delta in a merge (default 1)")
    evo.add_argument(
        "--merge-parents",
        action="store_true",
        help="merge the two parent models themselves (default: the union of their variants, each counted once)",
    )
    evo.add_argument("--n-known", type=positive_int, default=150, help="dev known questions in the fitness")
    evo.add_argument("--out", type=Path, required=True, help="new output directory")
    evo.add_argument("--json", action="store_true", help="print only the summary JSON")
    evo.set_defaults(func=_evolve)

    gain = sub.add_parser("merge-gain", help="merge gain vs kinship over pairs of a population (scatter, PCC)")
    gain.add_argument("--population", type=Path, nargs="+", required=True, help="population directories")
    gain.add_argument("--pairs", type=positive_int, default=30, help="pairs of variants (default 30)")
    gain.add_argument(
        "--overlapping", type=int, default=0, help="also this many pairs of two-variant merges sharing a variant"
    )
    gain.add_argument(
        "--method", choices=(*MERGE_METHODS, "regmean"), default="task_arithmetic", help="merge method (as evolve)"
    )
    gain.add_argument("--density", type=float, default=0.5, help="fraction of each delta kept by ties / dare")
    gain.add_argument(
        "--regmean-scale", type=float, default=1.0, help="regmean: times the corpus Gram part is counted (default 1)"
    )
    gain.add_argument("--weight", type=float, default=1.0, help="weight of each variant's delta in a merge (default 1)")
    gain.add_argument("--n-known", type=positive_int, default=150, help="dev known questions in the fitness")
    gain.add_argument("--out", type=Path, required=True, help="new output directory")
    gain.add_argument("--json", action="store_true", help="print only the JSON result")
    gain.set_defaults(func=_merge_gain)


def _variants(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agent.cli._population import build_variants
    from agent.config import open_home

    home = open_home(args.home)
    with tqdm(total=args.n * args.edits, desc="editing", unit="edit", file=sys.stderr) as bar:
        pop = build_variants(
            args.model,
            args.out,
            n=args.n,
            edits=args.edits,
            method=args.method,
            seed=args.seed,
            cache_dir=home.path("cache") / "stats",
            on_edit=bar.update,
            hparams=key_values(args.hparam),
        )
    per_edit = sum(v.seconds for v in pop.variants) / len(pop.edit_ids)
    print(f"{len(pop.variants)} {pop.method} variants x {args.edits} edits in {args.out} ({per_edit:.2f} s per edit)")
    return 0


class _Context:
    """What evolve and merge-gain share: the populations' variants and base, a cached fitness, merge, kinship."""

    def __init__(
        self,
        populations: list[Path],
        method: str,
        n_known: int,
        density: float = 0.5,
        weight: float = 1.0,
        regmean_scale: float = 1.0,
    ) -> None:
        from agent.cli._population import WorldFitness, load_population

        pops = [load_population(p) for p in populations]
        bases = {p.base.resolve() for p in pops}
        if len(bases) != 1:
            raise InvalidInputError(f"the populations have different base models: {sorted(map(str, bases))}")
        self.base = pops[0].base
        self.variants = [path for p in pops for path in p.paths]
        self.method = method
        self.density = density
        self.weight = weight
        self.regmean_scale = regmean_scale
        self.score = WorldFitness(self.base, [e for p in pops for e in p.edit_ids], n_known=n_known)
        self._cache: dict[Path, Fitness] = {}

    def fitness(self, model_dir: Path) -> Fitness:
        key = model_dir.resolve()
        if key not in self._cache:
            self._cache[key] = self.score(model_dir)
        return self._cache[key]

    def merger(self, method: str | None = None) -> Callable[[Any, Path], Path]:
        from tools.merge import MergeSpec, merge_models, regmean_merge

        chosen = method or self.method

        def merge(parents: Any, out: Path) -> Path:
            if chosen == "regmean":  # the variants' own Gram data weighs their deltas (tools.merge._regmean)
                return regmean_merge(list(parents), out, base=self.base, shared_scale=self.regmean_scale)
            # linear is the plain average (1/n each); the delta methods weigh each variant's delta by --weight
            weights = None if chosen == "linear" else tuple(self.weight for _ in parents)
            spec = MergeSpec(method=chosen, density=self.density, weights=weights)  # type: ignore[arg-type]
            return merge_models(list(parents), out, base=self.base, spec=spec)

        return merge

    def kinship(self, a: Path, b: Path) -> float:
        from tools.kinship import kinship

        return kinship([a, b], self.base).pairs[0].whole.pcc


def _new_out(out: Path) -> Path:
    if out.exists():
        raise OutputExistsError(f"{out} already exists: choose a new output directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def _evolve(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tools.merge import evolve, plot_lineage

    if args.fitness != "world:dev":
        raise InvalidInputError(f"unknown fitness {args.fitness!r} (known: world:dev)")
    ctx = _Context(args.population, args.method, args.n_known, args.density, args.weight, args.regmean_scale)
    if len(ctx.variants) < 2:
        raise InvalidInputError("evolve needs at least two variants")
    tmp = _new_out(args.out)
    try:
        results = {}
        with tqdm(desc="evolve", unit="model", file=sys.stderr) as bar:
            for label, explore in (("kinship exploration", True), ("no exploration", False)):
                results[label] = evolve(
                    ctx.variants,
                    workdir=tmp / ("work-explore" if explore else "work-greedy"),
                    fitness=ctx.fitness,
                    merge=ctx.merger(),
                    kinship=ctx.kinship,
                    k=args.k,
                    generations=args.generations,
                    explore=explore,
                    merge_members=not args.merge_parents,
                    on_step=lambda _node: bar.update(),
                )
            average = ctx.merger("linear")(ctx.variants, tmp / "average")
            bar.update()
        with_explore, greedy = results["kinship exploration"], results["no exploration"]
        single = max(ctx.variants, key=lambda p: ctx.fitness(p).fitness)
        summary = {
            "best": {
                "name": with_explore.best.name,
                "members": list(with_explore.best.members),
                **with_explore.best.fitness.to_json(),
            },
            "no_exploration": {
                "name": greedy.best.name,
                "members": list(greedy.best.members),
                **greedy.best.fitness.to_json(),
            },
            "best_single_variant": {"name": single.name, **ctx.fitness(single).to_json()},
            "average_merge": {"name": "average", **ctx.fitness(average).to_json()},
            "base": {"name": ctx.base.name, **ctx.fitness(ctx.base).to_json()},
            "k": args.k,
            "generations": args.generations,
            "method": args.method,
            "merge": "parents" if args.merge_parents else "members",
            "weight": args.weight,
            "regmean_scale": args.regmean_scale if args.method == "regmean" else None,
        }
        shutil.copytree(with_explore.best.path, tmp / "best")
        lineage = {label: r.to_json() for label, r in results.items()}
        (tmp / "lineage.json").write_text(json.dumps(lineage, indent=2) + "\n", encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        try:
            plot_lineage(results, tmp / "lineage.png")
        except ImportError:
            logger.warning("matplotlib is not installed: no lineage plot")
        for work in ("work-explore", "work-greedy", "average"):  # only the best model is kept
            shutil.rmtree(tmp / work, ignore_errors=True)
        if args.out.exists():
            raise OutputExistsError(f"{args.out} appeared while evolving: the results are discarded")
        tmp.rename(args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{'model':<28} {'fitness':>8} {'edits':>7} {'locality':>9} {'known':>7}")
    for key in ("base", "best_single_variant", "average_merge", "no_exploration", "best"):
        row = summary[key]
        print(
            f"{key + ' (' + row['name'] + ')':<28} {row['fitness']:>8.3f} {row['edit_reliability']:>7.3f} "
            f"{row['locality']:>9.3f} {row['known_accuracy']:>7.3f}"
        )
    print(f"best model, lineage.json/png and summary.json written to {args.out}")
    return 0


def _merge_gain(args: argparse.Namespace) -> int:
    import math

    from tqdm import tqdm

    ctx = _Context(args.population, args.method, args.n_known, args.density, args.weight, args.regmean_scale)
    n = len(ctx.variants)
    pairs: list[tuple[tuple[int, ...], tuple[int, ...]]] = [((i,), (j,)) for i, j in combinations(range(n), 2)]
    pairs = pairs[: args.pairs]
    if len(pairs) < args.pairs:
        raise InvalidInputError(f"{n} variants give only {len(pairs)} pairs, {args.pairs} asked")
    if args.overlapping < 0 or (args.overlapping and n < 3):
        raise InvalidInputError(f"--overlapping needs >= 3 variants and a count >= 0 (got {n}, {args.overlapping})")
    overlapping = [((i, (i + 1 + s) % n), (i, (i + 2 + s) % n)) for s in range(n - 2) for i in range(n)]
    pairs += list(dict.fromkeys(overlapping))[: args.overlapping]
    tmp = _new_out(args.out)
    rows: list[dict[str, Any]] = []
    try:
        merge = ctx.merger()
        models: dict[tuple[int, ...], Path] = {(i,): v for i, v in enumerate(ctx.variants)}

        def model(members: tuple[int, ...]) -> Path:
            key = tuple(sorted(members))
            if key not in models:
                models[key] = merge([ctx.variants[i] for i in key], tmp / ("m-" + "-".join(map(str, key))))
            return models[key]

        for ma, mb in tqdm(pairs, desc="merge gain", unit="pair", file=sys.stderr):
            a, b = model(ma), model(mb)
            merged = model(tuple(set(ma) | set(mb)))
            parents = (ctx.fitness(a).fitness + ctx.fitness(b).fitness) / 2
            fit = ctx.fitness(merged)
            rows.append(
                {"a": a.name, "b": b.name, "kinship": ctx.kinship(a, b), "gain": fit.fitness - parents, **fit.to_json()}
            )
        for members, path in models.items():  # only the results are kept
            if len(members) > 1:
                shutil.rmtree(path)
        xs = [r["kinship"] for r in rows if not math.isnan(r["kinship"])]
        ys = [r["gain"] for r in rows if not math.isnan(r["kinship"])]
        result = {
            "method": args.method,
            "weight": args.weight,
            "regmean_scale": args.regmean_scale if args.method == "regmean" else None,
            "pairs": rows,
            "pcc_kinship_gain": _pearson(xs, ys),
            "n": len(xs),
        }
        (tmp / "gain.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        _scatter(xs, ys, result["pcc_kinship_gain"], tmp / "gain.png")
        if args.out.exists():
            raise OutputExistsError(f"{args.out} appeared while merging: the results are discarded")
        tmp.rename(args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"merge gain vs kinship over {len(xs)} pairs: Pearson r = {result['pcc_kinship_gain']:.3f}")
        print(f"gain.json and gain.png written to {args.out}")
    return 0


def _pearson(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx, vy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return cov / (vx * vy) ** 0.5 if vx > 0 and vy > 0 else float("nan")


def _scatter(xs: list[float], ys: list[float], r: float, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no scatter plot")
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(xs, ys, s=14)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("kinship (PCC of delta parameters)")
    ax.set_ylabel("merge gain (fitness - mean of parents)")
    ax.set_title(f"{len(xs)} pairs, Pearson r = {r:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
