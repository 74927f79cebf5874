"""``factagent concept-bench``: ConceptEdit's metrics of FT-L, ROME, MEMIT, AlphaEdit and PROMPT on definitions.

Each method edits each selected concept definition alone on a fresh copy of the model, scores it, and rolls it
back (``eval.concepts.run_concept_bench``). Cases are the reference world's 117 definition edits
(``--dataset world``) or a file in ConceptEdit's released JSON format. Prints a table, or with ``--json`` the
JSON list of rows (one per method and model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli._args import key_values, positive_int
from tools.errors import InvalidInputError

_DEFAULT_METHODS = "FT-L,ROME,MEMIT,ALPHAEDIT,PROMPT"


def register(sub: Any) -> None:
    """Add the ``concept-bench`` command."""
    bench = sub.add_parser(
        "concept-bench",
        help="ConceptEdit metrics of editing methods on concept definitions",
        description="Edit concept definitions (each alone, rolled back after scoring) and report reliability, "
        "generalization, locality (greedy; teacher-forced under 'teacher_forced'), Instance Change (instance-of "
        "yes/no answers that flip) and Concept Consistency (MiniLM cosine of the generated vs target definition).",
    )
    bench.add_argument("--method", default=_DEFAULT_METHODS, help=f"comma-separated (default: {_DEFAULT_METHODS})")
    bench.add_argument(
        "--model", type=Path, action="append", help="model directory, repeatable (default: both bundled models)"
    )
    bench.add_argument("--limit", type=positive_int, help="at most this many edits per method and model")
    bench.add_argument("--dataset", default="world", help="'world' or a ConceptEdit JSON file")
    bench.add_argument("--select", choices=("known", "all"), default="known", help="known: definitions it knows")
    bench.add_argument("--seed", type=int, default=0, help="case-sampling seed")
    bench.add_argument("--judge", choices=("minilm", "none"), default="minilm", help="Concept Consistency judge")
    bench.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    bench.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="editor hyperparameter override (VALUE as JSON, else a string), repeatable; applies to every method",
    )
    bench.add_argument(
        "--no-preserve-definitions",
        action="store_true",
        help="do not give AlphaEdit (or ROME with preserve_prompt_weight or preserve_output_weight > 0) the world's "
        "train-side definition prompts as preserved keys",
    )
    bench.add_argument(
        "--preserve-question-form",
        action="store_true",
        help="with the preserved definition prompts, also the held-out (not KNOWN) concepts' 'What is a <label>?' "
        "(the measured question's form; never a locality prompt, which are KNOWN concepts')",
    )
    bench.add_argument("--json", action="store_true", help="print only the JSON list of rows")
    bench.set_defaults(func=_concept_bench)

    check = sub.add_parser(
        "concept-check",
        help="instance-of answers of the agent's KG path after each world concept edit",
        description="For each world concept edit: tell the new definition to the concept desk (trusted), ask "
        "'Is X a <concept>?' for the instances and non-instances of the old and the new concept, compare with the "
        "membership the new definition implies, then roll back (checked exact). No model is loaded.",
    )
    check.add_argument("--limit", type=positive_int, help="at most this many edits (default: all)")
    check.add_argument("--json", action="store_true", help="print only a JSON object")
    check.set_defaults(func=_concept_check)


def _cases(dataset: str, model_dir: Path) -> list[Any]:
    from eval.concepts import load_conceptedit, world_concept_cases
    from eval.world import DATA_DIR
    from tools.lm import PromptFormat

    fmt = PromptFormat.load(model_dir)
    if dataset == "world":
        return world_concept_cases(DATA_DIR, fmt)
    if not Path(dataset).is_file():
        raise InvalidInputError(f"--dataset: {dataset!r} is neither 'world' nor a ConceptEdit file")
    return load_conceptedit(dataset, fmt)


def _method_hparams(
    method: str,
    dataset: str,
    cases: list[Any],
    base: dict[str, Any],
    preserve: bool,
    fmt: Any,
    question_form: bool = False,
) -> dict[str, Any]:
    """AlphaEdit (and ROME with ``preserve_prompt_weight`` or ``preserve_output_weight`` > 0) on the world: the
    train-side definition prompts as preserved keys (preserved_definition_prompts, uses_preserved_prompts)."""
    from eval.concepts import editor_for, preserved_definition_prompts, uses_preserved_prompts
    from eval.world import DATA_DIR

    if not uses_preserved_prompts(editor_for(method)[1], base) or dataset != "world" or not preserve:
        return base
    exclude = {p for c in cases for p, _ in c.locality}
    prompts = preserved_definition_prompts(DATA_DIR, exclude=exclude, prompt_format=fmt, question_form=question_form)
    return base | {"preserve_prompts": prompts}


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of the rows (greedy scores; teacher-forced in brackets)."""
    head = "method  model              n   rel (tf)        gen (tf)        loc (tf)        inst.chg  flips  consist"
    lines = [head, "-" * len(head)]
    for r in rows:
        tf = r["teacher_forced"]
        cells = [
            f"{r['method']:<7}",
            f"{r['model']:<17}",
            f"{r['n_edits']:>3}",
            *(f"{_fmt(r[k]):>5} ({_fmt(tf[k])})" for k in ("reliability", "generalization", "locality")),
            f"{_fmt(r['instance_change']):>8}",
            f"{r['instances_flipped']:>3}/{r['instance_probes']:<3}",
            f"{_fmt(r['concept_consistency']):>7}",
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _concept_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agent.config import open_home
    from eval.concepts import EmbeddingConsistency, run_concept_bench
    from eval.world import DATA_DIR, MODEL_NAMES, MODELS_DIR, load_world
    from tools.edit import load_edited
    from tools.lm import check_model_dir

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if not methods:
        raise InvalidInputError("--method: no method given")
    model_dirs = args.model or [MODELS_DIR / MODEL_NAMES["gpt2"], MODELS_DIR / MODEL_NAMES["llama"]]
    for model_dir in model_dirs:
        check_model_dir(model_dir)
    home = open_home(args.home)
    judge = None
    if args.judge == "minilm":
        from agent.wiring import load_embedder

        judge = EmbeddingConsistency(load_embedder(home))
    corpus = [d.text for d in load_world(DATA_DIR).documents]
    overrides = key_values(args.hparam)
    rows: list[dict[str, Any]] = []
    with tqdm(desc="concept edits", unit="edit", file=sys.stderr) as bar:
        for model_dir in model_dirs:
            cases = _cases(args.dataset, model_dir)
            lm = load_edited(model_dir, device=args.device)
            for method in methods:
                bar.set_postfix_str(f"{model_dir.name} {method}")
                row = run_concept_bench(
                    lm,
                    method,
                    cases,
                    limit=args.limit,
                    select=args.select,
                    seed=args.seed,
                    judge=judge,
                    corpus=corpus,
                    cache_dir=home.path("cache") / "stats",
                    hparams=_method_hparams(
                        method,
                        args.dataset,
                        cases,
                        overrides,
                        not args.no_preserve_definitions,
                        lm.prompt_format,
                        args.preserve_question_form,
                    ),
                    on_edit=bar.update,
                )
                rows.append(row | {"model_path": str(model_dir)})
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else table(rows))
    return 0


def _concept_check(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tqdm import tqdm

    from eval.concepts import check_concept_consistency
    from eval.world import DATA_DIR

    with tqdm(desc="concept edits", unit="edit", file=sys.stderr) as bar:
        result = check_concept_consistency(DATA_DIR, limit=args.limit, on_edit=bar.update)
    out = asdict(result) | {"rate": result.rate, "baseline_rate": result.baseline_rate}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"{result.consistent}/{result.questions} instance-of answers consistent with the edited definitions "
            f"({result.rate:.3f}; before the edits {result.baseline_rate:.3f}); {result.unknown} unknown; "
            f"conflicts reported for {result.conflicts_reported}/{result.edits} edits "
            f"(expected {result.conflicts_expected}); exact rollbacks {result.rollbacks_exact}/{result.edits}"
        )
    return 0
