"""``factagent kinship`` (Model Kinship of edited or fine-tuned models) and ``factagent merge`` (mergekit).

``kinship A B [C ...] --base BASE`` prints the pairwise PCC / cosine / Euclidean distance of the models' delta
parameters (whole model, and per layer with ``--per-layer``), streaming over the safetensors tensors; with
``--json`` one JSON object (``pcc``, ``cosine``, ``euclidean``, ``per_layer`` of the first pair, every pair
under ``pairs``). A heatmap PNG goes to ``--plot`` (default ``<home>/reports/kinship.png``; ``--no-plot``).

``merge --method ties --models A B ... --base BASE --out DIR`` merges with mergekit on the CPU into a new
directory (written to a temporary directory, then renamed); ``--method regmean`` merges MEMIT / AlphaEdit
variants by their saved Gram data instead (:func:`tools.merge.regmean_merge`; not a mergekit method).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``kinship`` and ``merge`` commands."""
    from tools.merge import MERGE_METHODS

    kin = sub.add_parser(
        "kinship",
        help="Model Kinship: similarity of models' delta parameters against a common base",
        description="Pairwise Pearson correlation, cosine similarity and Euclidean distance of the models' "
        "delta parameters (weights minus the base's), whole model and per layer, streamed tensor by tensor.",
    )
    kin.add_argument("models", nargs="+", type=Path, help="two or more model directories")
    kin.add_argument("--base", type=Path, required=True, help="the common base model directory")
    kin.add_argument("--per-layer", action="store_true", help="also print the per-layer figures")
    kin.add_argument("--json", action="store_true", help="print one JSON object")
    kin.add_argument("--plot", type=Path, help="heatmap PNG (default: <home>/reports/kinship.png)")
    kin.add_argument("--no-plot", action="store_true", help="write no heatmap")
    kin.set_defaults(func=_kinship)

    merge = sub.add_parser(
        "merge",
        help="merge model directories with mergekit (task arithmetic, TIES, DARE, SLERP, linear)",
        description="Merge HF model directories of one architecture with mergekit on the CPU into a new "
        "directory (nothing is written unless the merge completes).",
    )
    merge.add_argument(
        "--method",
        choices=(*MERGE_METHODS, "regmean"),
        default="ties",
        help="mergekit method (default: ties), or regmean (variants built by `variants --method memit/alphaedit`)",
    )
    merge.add_argument(
        "--regmean-scale",
        type=float,
        default=1.0,
        help="regmean: times the shared corpus Gram part is counted (1: a joint solve of all edits, the default; "
        "the number of models: plain RegMean)",
    )
    merge.add_argument("--models", nargs="+", type=Path, required=True, help="model directories to merge")
    merge.add_argument("--base", type=Path, help="common base model (needed by every method except linear)")
    merge.add_argument("--weights", type=float, nargs="+", help="one weight per model")
    merge.add_argument("--density", type=float, default=0.5, help="fraction of each delta kept (TIES / DARE)")
    merge.add_argument("--t", type=float, default=0.5, help="SLERP interpolation factor")
    merge.add_argument("--seed", type=int, default=0, help="random seed (DARE)")
    merge.add_argument("--out", type=Path, required=True, help="new output directory (must not exist)")
    merge.set_defaults(func=_merge)


def _fmt(x: float) -> str:
    return "  nan " if math.isnan(x) else f"{x:+.3f}"


def _kinship(args: argparse.Namespace) -> int:
    from agent.config import open_home
    from tools.kinship import kinship, plot_kinship

    report = kinship(args.models, args.base)
    plot = None
    if not args.no_plot:
        plot = args.plot or open_home(args.home).root / "reports" / "kinship.png"
        try:
            plot_kinship(report, plot)
        except ImportError:
            logger.warning("matplotlib is not installed: no heatmap written")
            plot = None
    if args.json:
        print(json.dumps(report.to_json() | {"plot": str(plot) if plot else None}, indent=2))
        return 0
    print(f"kinship of delta parameters against {report.base} ({report.seconds:.2f} s)")
    print(f"{'model A':<24} {'model B':<24} {'PCC':>7} {'cosine':>7} {'euclid':>9}")
    for p in report.pairs:
        w = p.whole
        print(f"{Path(p.a).name:<24} {Path(p.b).name:<24} {_fmt(w.pcc):>7} {_fmt(w.cosine):>7} {w.euclidean:>9.4f}")
        if args.per_layer:
            for layer, s in p.per_layer.items():
                print(f"  {layer:<46} {_fmt(s.pcc):>7} {_fmt(s.cosine):>7} {s.euclidean:>9.4f}")
    if plot:
        print(f"heatmap written to {plot}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from tools.errors import InvalidInputError
    from tools.merge import MergeSpec, merge_models, regmean_merge

    if args.method == "regmean":
        if args.base is None:
            raise InvalidInputError("regmean needs --base (the common base model)")
        out = regmean_merge(args.models, args.out, base=args.base, shared_scale=args.regmean_scale)
        print(f"regmean merge of {len(args.models)} models written to {out}", file=sys.stdout)
        return 0

    spec = MergeSpec(
        method=args.method,
        weights=tuple(args.weights) if args.weights else None,
        density=args.density,
        t=args.t,
        seed=args.seed,
    )
    out = merge_models(args.models, args.out, base=args.base, spec=spec)
    print(f"{args.method} merge of {len(args.models)} models written to {out}", file=sys.stdout)
    return 0
