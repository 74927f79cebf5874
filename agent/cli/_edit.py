"""``factagent edit-bench`` (the KnowEdit benchmark of the editors) and ``factagent edit`` (one edit, saved).

``edit-bench`` edits a fresh copy of the model T times for each T and scores every edited fact after the last
edit (``eval.editing.run_edit_bench``). Cases are a seeded sample (``--seed``) of ``--n`` (default: the largest
T) edits of the dataset whose edit prompt the unedited model answers with the old object (``--select known``,
KnowEdit practice; ``--select all`` takes any). It prints a table, or with ``--json`` only the JSON list of rows,
and writes a PNG plot of the metrics against T to ``--plot`` (default ``<home>/reports/edit-bench-<model>.png``;
needs matplotlib, skipped with a warning without it, or with ``--no-plot``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from agent.cli._args import method_overrides, positive_int
from tools.errors import InvalidInputError, UnknownEditorError

logger = logging.getLogger(__name__)


def _int_list(text: str) -> list[int]:
    """An argparse type: comma-separated positive integers (``1,10,100``)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _hparam(text: str) -> tuple[str, Any]:
    """An argparse type: ``KEY=VALUE`` with a JSON value (``layers=[2]``, ``steps=10``), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), tuple(value) if isinstance(value, list) else value


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="local model directory (default: config, else bundled GPT-2)")
    parser.add_argument("--device", help="cpu, cuda, mps (default: config, else the best available)")
    parser.add_argument(
        "--hparam", type=_hparam, action="append", default=[], metavar="KEY=VALUE", help="editor hyperparameter"
    )


def register(sub: Any) -> None:
    """Add the ``edit-bench`` and ``edit`` commands."""
    bench = sub.add_parser(
        "edit-bench",
        help="KnowEdit metrics of editing methods after T sequential edits",
        description="For each T, edit a fresh copy of the model with T facts one after another (MEMIT: one batch) "
        "and score every edited fact after the last edit: reliability, generalization, locality, portability "
        "(teacher-forced token accuracy and greedy exact match) and fluency. Cases: a seeded sample of the "
        "dataset's edits whose edit prompt the unedited model answers with the old object (--select known).",
    )
    bench.add_argument("--method", default="rome", help="editing method(s), comma-separated (default: rome)")
    bench.add_argument("--T", dest="t_values", type=_int_list, default=[1, 10, 100], help="edit counts: 1,10,100")
    bench.add_argument("--n", type=positive_int, help="cases to sample (default: the largest T)")
    _model_args(bench)
    bench.add_argument(
        "--dataset",
        default="world",
        help="'world' (the reference world's 600 edits), 'world-lifelong' (those plus the lifelong pool of "
        "edit-table, 2,105 edits: T=1000), 'world-zh' (its Chinese slice's, per CKnowEdit category) or a dataset "
        "file (a CKnowEdit file is also reported per category)",
    )
    bench.add_argument("--seed", type=int, default=0, help="case-sampling seed")
    bench.add_argument(
        "--select", choices=("known", "all"), default="known", help="known: only edits the model answers correctly"
    )
    bench.add_argument(
        "--edit-mode",
        choices=("auto", "sequential", "batch", "single"),
        default="auto",
        help="one edit call per fact, or batches (auto: batch for memit, sequential otherwise); single: T=1, "
        "each of --n facts edited alone and rolled back (the ROME/KnowEdit single-edit protocol)",
    )
    bench.add_argument("--batch-size", type=positive_int, help="facts per call in batch mode (default: all T)")
    bench.add_argument(
        "--checkpoint",
        type=Path,
        help="save the run there (a subdirectory per method) and resume from it when the same command runs again",
    )
    bench.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=100,
        help="with --checkpoint: save after an edit call once this many edits were made since the last save "
        "(default 100: every batch of 100)",
    )
    bench.add_argument("--json", action="store_true", help="print only the JSON list of rows")
    bench.add_argument("--engine", choices=("local", "ray"), default="local", help="ray: one task per (method, T)")
    bench.add_argument("--workers", type=positive_int, default=2, help="CPUs of the local Ray cluster")
    bench.add_argument("--address", help="with --engine ray: join this Ray cluster (default: start a local one)")
    bench.add_argument("--plot", type=Path, help="PNG path (default: <home>/reports/edit-bench-<model>.png)")
    bench.add_argument("--no-plot", action="store_true", help="write no plot")
    bench.set_defaults(func=_edit_bench)

    _register_table(sub)
    edit = sub.add_parser(
        "edit",
        help="write one fact into a model and save the edited model",
        description="Build the request from the relation's first cloze template with the subject, compute and "
        "apply the edit, save the model with its journal (tools.edit.save_edited) and print the greedy answer "
        "before and after.",
    )
    _model_args(edit)
    edit.add_argument("--method", default="rome", help="editing method (default: rome)")
    edit.add_argument("--subject", required=True, help="the entity, e.g. 'Alibaba'")
    edit.add_argument("--relation", required=True, help="a world relation id, e.g. company_ceo")
    edit.add_argument("--new", required=True, help="the new object, e.g. 'Takahiro Hachigō'")
    edit.add_argument("--out", type=Path, required=True, help="directory for the edited model")
    edit.add_argument(
        "--layers",
        help="'auto' (the MLPs of the relation's knowledge circuit, tools.circuits) or comma-separated layer indices",
    )
    edit.set_defaults(func=_edit)


def _register_table(sub: Any) -> None:
    table = sub.add_parser(
        "edit-table",
        help="the WISE paper's Table 2 on the reference world (lifelong editing, T = 1..1000)",
        description="For every method, reference model and T: edit a fresh model with the first T edits of the "
        "lifelong pool (edits the model answers correctly), one after another, and score all of them after the "
        "last (reliability, generalization, locality; greedy and teacher-forced; s/edit, wall time, peak memory). "
        "Each cell is cached in OUT/cells and skipped when run again, and a killed cell resumes from its last "
        "checkpoint (OUT/checkpoints); OUT gets results.json, table.md and "
        "t_curve.png (mean of rel/gen/loc against T).",
    )
    table.add_argument("--out", type=Path, required=True, help="output directory (cells cached there)")
    table.add_argument("--methods", help="comma-separated editing methods (default: Table 2's six)")
    table.add_argument(
        "--models", default="gpt2,llama", help="reference models: gpt2,llama (and llama-large, the larger LLaMA)"
    )
    table.add_argument("--T", dest="t_values", type=_int_list, default=[1, 10, 100, 1000], help="1,10,100,1000")
    table.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    table.add_argument("--seed", type=int, default=0, help="edit-sequence seed")
    table.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per cell (default 4 h)")
    table.add_argument("--in-process", action="store_true", help="run cells in this process (peak memory shared)")
    table.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="save a running cell's edited model every N edits under OUT/checkpoints, so a killed cell resumes "
        "there (0: no saves; default 100)",
    )
    table.add_argument(
        "--hparam", type=_hparam, action="append", default=[], metavar="METHOD:KEY=VALUE", help="editor override"
    )
    table.set_defaults(func=_edit_table)


def _edit_table(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agent.config import open_home
    from eval.editing import LIFELONG_METHODS, GridCell, GridSettings, run_grid

    methods = _methods(args.methods or ",".join(LIFELONG_METHODS))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    from eval.world import ALL_MODEL_NAMES

    if not models or any(m not in ALL_MODEL_NAMES for m in models):
        raise InvalidInputError(f"--models: choose from {', '.join(ALL_MODEL_NAMES)}, got {args.models!r}")
    overrides = method_overrides(args.hparam, methods, "--methods")
    home = open_home(args.home)
    settings = GridSettings(
        device=args.device,
        seed=args.seed,
        cache_dir=str(home.path("cache") / "stats"),
        hparams=overrides,
        timeout=args.timeout,
        checkpoint_dir=str(args.out / "checkpoints") if args.checkpoint_every > 0 else None,
        checkpoint_every=max(args.checkpoint_every, 1),
    )
    cells = [GridCell(method=me, model=mo, T=t) for mo in models for t in sorted(args.t_values) for me in methods]
    with tqdm(total=len(cells), desc="cells", unit="cell", file=sys.stderr) as bar:

        def done(cell: Any, status: str) -> None:
            bar.set_postfix_str(f"{cell.key} {status}")
            bar.update(1)

        results = run_grid(cells, args.out, settings, isolate=not args.in_process, on_cell=done)
    print((args.out / "table.md").read_text(encoding="utf-8"))
    print(f"results in {args.out} (results.json, table.md, t_curve.png); {len(results['failed'])} cell(s) failed")
    return 1 if results["failed"] else 0


def _methods(text: str) -> list[str]:
    from tools.edit import editor_names

    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in editor_names()]
    if unknown or not methods:
        raise UnknownEditorError(
            f"unknown editing method {', '.join(map(repr, unknown or [text]))} (known: {', '.join(editor_names())})"
        )
    return methods


def _model_dir(args: argparse.Namespace, settings: Any) -> Path:
    """The local model directory to edit.

    Raises:
        ConfigError: the home's model is served (``backend = "openai"``) and no ``--model`` directory was given.
    """
    from agent.config import BUNDLED_MODEL
    from tools.errors import ConfigError

    if settings.model.backend == "openai" and not args.model:
        raise ConfigError(
            f"parametric editing needs local weights, and this home's model {settings.endpoint.model!r} is served "
            '([model] backend = "openai"): pass --model DIR to edit a local copy, or use tell (KG and memory)'
        )
    return args.model or (Path(settings.model.path) if settings.model.path else BUNDLED_MODEL)


def _cases(dataset: str, world: Any, model_dir: Path) -> list[Any]:
    from eval.editing import load_edit_dataset, world_edit_cases
    from tools.lm import PromptFormat

    fmt = PromptFormat.load(model_dir)
    if dataset == "world":
        return list(world_edit_cases(world, fmt))
    if dataset == "world-lifelong":  # the world's edits, then one edit of every other KNOWN fact (edit-table's)
        from dataclasses import replace

        from eval.world import DATA_DIR, load_lifelong_edits

        return list(world_edit_cases(replace(world, edits=world.edits + load_lifelong_edits(DATA_DIR, world)), fmt))
    if dataset == "world-zh":
        from eval.editing import world_zh_edit_cases

        return world_zh_edit_cases(world, fmt)
    if not Path(dataset).is_file():
        raise InvalidInputError(
            f"--dataset: {dataset!r} is neither 'world', 'world-lifelong', 'world-zh' nor a dataset file"
        )
    cases = load_edit_dataset(dataset, prompt_format=fmt)
    if any(c.followups for c in cases):
        logger.warning("%s: follow-up edits (Pitfalls) are not applied by edit-bench, only each request", dataset)
    return cases


def _by_category(cases: list[Any]) -> dict[str | None, list[Any]]:
    """Cases by CKnowEdit category (Chinese cases), or all under ``None`` when none has one."""
    if not any(c.category for c in cases):
        return {None: cases}
    groups: dict[str | None, list[Any]] = {}
    for case in cases:
        groups.setdefault(case.category or "other", []).append(case)
    return groups


def _quiet_transformers() -> None:
    """No "Loading weights" bar from transformers: the model is reloaded for every T, under our own bar."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _edit_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from agent.config import open_home
    from eval.editing import edit_bench_table, plot_edit_bench, run_edit_bench
    from eval.world import DATA_DIR, load_world
    from tools.lm import check_model_dir

    methods = _methods(args.method)
    home = open_home(args.home)
    model_dir = _model_dir(args, home.settings)
    check_model_dir(model_dir)
    _quiet_transformers()
    world = load_world(DATA_DIR)
    cases = _cases(args.dataset, world, model_dir)
    corpus = [d.text for d in world.documents]
    if args.dataset == "world-zh":  # key statistics over the Chinese statements too
        corpus += [f.statement for f in world.slice_facts if f.language == "zh"]
    groups = _by_category(cases)
    n = args.n or max(args.t_values)
    hparams = dict(args.hparam)
    if hparams.get("layers") == "auto":  # --hparam layers=auto: locate with the relation's circuit, as edit does
        hparams |= _layers("auto", world)
    common = {
        "edit_mode": args.edit_mode,
        "batch_size": args.batch_size,
        "select": args.select,
        "seed": args.seed,
        "corpus": corpus,
        "cache_dir": home.path("cache") / "stats",
        "device": args.device or home.settings.model.device or None,
        "hparams": hparams,
    }
    rows: list[dict[str, Any]] = []
    if args.checkpoint is not None and (args.engine == "ray" or args.edit_mode == "single"):
        raise InvalidInputError("--checkpoint needs --engine local and sequential or batch editing")
    if args.engine == "ray":  # one task per (method, category, T); a failing cell fails the whole run
        from eval.editing import run_cells_ray

        keys = [(m, c, t) for m in methods for c in groups for t in args.t_values]
        cells = [
            {"lm_path": model_dir, "method": m, "T_values": [t], "n": n, "cases": groups[c], **common}
            for m, c, t in keys
        ]
        with tqdm(total=len(cells), desc="cells", unit="cell", file=sys.stderr) as bar:
            per_cell = run_cells_ray(cells, workers=args.workers, address=args.address, on_cell=lambda _: bar.update())
        for (_, category, _), found in zip(keys, per_cell, strict=True):
            rows.extend(found if category is None else [{"category": category} | r for r in found])
    else:
        per_group = n if args.edit_mode == "single" else sum(min(t, n) for t in args.t_values)
        total = len(methods) * len(groups) * per_group
        with tqdm(total=total, desc="editing", unit="edit", file=sys.stderr) as bar:
            for method, (category, group) in ((m, g) for m in methods for g in groups.items()):
                bar.set_postfix_str(method if category is None else f"{method} {category}")
                try:
                    found = run_edit_bench(
                        model_dir,
                        method,
                        args.t_values,
                        args.n,
                        group,
                        on_edit=bar.update,
                        checkpoint=_checkpoint(args, method, category),
                        **common,
                    )
                except InvalidInputError as exc:
                    if category is None:
                        raise
                    logger.warning("%s, category %s: skipped (%s)", method, category, exc)
                    continue
                rows.extend(found if category is None else [{"category": category} | r for r in found])
    if not rows and None not in groups:  # every category was skipped
        raise InvalidInputError("no category of the dataset had an edit case that qualifies (try --select all)")
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print(edit_bench_table(rows))
    if not args.no_plot and not any("category" in r for r in rows):  # one plot line per method: not per category
        plot = args.plot or home.root / "reports" / f"edit-bench-{model_dir.name}.png"
        try:
            plot_edit_bench(rows, plot)
            print(f"plot written to {plot}", file=sys.stderr if args.json else sys.stdout)
        except ImportError:
            logger.warning("matplotlib is not installed: no plot written (pip install matplotlib)")
    return 0


def _checkpoint(args: argparse.Namespace, method: str, category: str | None) -> Any:
    """``--checkpoint DIR``: the method's (and category's) own directory under ``DIR``, else ``None``."""
    if args.checkpoint is None:
        return None
    from eval.editing import BenchCheckpoint

    sub = method if category is None else f"{method}-{category}"
    return BenchCheckpoint(args.checkpoint / sub, every=args.checkpoint_every)


def _layers(text: str | None, world: Any) -> dict[str, Any]:
    """``--layers``: nothing, ``auto`` (with a circuit locator over the world), or explicit indices."""
    if text is None:
        return {}
    if text.strip() == "auto":
        from eval.circuits import relation_case_source
        from tools.circuits import CircuitLocator

        return {"layers": "auto", "locator": CircuitLocator(relation_case_source(world))}
    try:
        return {"layers": tuple(_int_list_any(text))}
    except ValueError as exc:
        raise InvalidInputError(f"--layers: expected 'auto' or comma-separated integers, got {text!r}") from exc


def _int_list_any(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError(text)
    return values


def _edit(args: argparse.Namespace) -> int:
    from agent.config import open_home
    from eval.world import DATA_DIR, load_world
    from tools.edit import EditRequest, get_editor, load_edited, save_edited

    method = _methods(args.method)
    if len(method) != 1:
        raise InvalidInputError("edit takes one --method")
    home = open_home(args.home)
    world = load_world(DATA_DIR)
    try:
        relation = world.relation(args.relation)
    except KeyError:
        known = ", ".join(sorted(r.id for r in world.relations))
        raise InvalidInputError(f"unknown relation {args.relation!r} (known: {known})") from None
    # a directory saved by an earlier `factagent edit` keeps its edits and journal: the new edit stacks on them
    lm = load_edited(_model_dir(args, home.settings), device=args.device or home.settings.model.device or None)
    old = next((f.object for f in world.facts if f.relation == relation.id and f.subject == args.subject.strip()), None)
    prompt = relation.cloze[0].format(args.subject.strip())
    request = EditRequest(prompt, args.subject.strip(), args.new.strip(), target_old=old, relation=relation.id)
    hparams = dict(args.hparam) | _layers(args.layers, world)
    editor = get_editor(
        method[0],
        corpus=[d.text for d in world.documents],
        cache_dir=home.path("cache") / "stats",
        **hparams,
    )
    before = lm.generate([prompt])[0].text
    handle = editor.apply(lm, editor.compute(lm, [request]))
    after = lm.generate([prompt])[0].text
    if args.layers == "auto":
        print(f"layers located by the {relation.id} circuit: {editor.hparams_for(lm, [request]).layers}")  # type: ignore[attr-defined]
    out = save_edited(lm, args.out)
    print(f"{method[0]} edit {handle.edit_id}: {prompt!r} before {before!r} -> after {after!r}; saved to {out}")
    return 0
