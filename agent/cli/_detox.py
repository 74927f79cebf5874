"""``factagent detox-bench`` and ``factagent detox``: detoxifying edits (SafeEdit / DINM, issue 19)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli._args import method_overrides, positive_int
from agent.cli._edit import _hparam
from tools.errors import InvalidInputError, OutputExistsError, UnknownEditorError


def register(sub: Any) -> None:
    """Add ``detox-bench`` and ``detox``."""
    bench = sub.add_parser("detox-bench", help="SafeEdit metrics (DS, DG) of detox editors on the unsafe variants")
    bench.add_argument("--method", default="dinm,ft-l", help="editing methods, comma-separated (default: dinm,ft-l)")
    bench.add_argument(
        "--model",
        type=Path,
        action="append",
        help="model directory (default: gpt2-world-unsafe and llama-world-unsafe)",
    )
    bench.add_argument("--dataset", default="world", help="'world' (the safety slice's cases) or a SafeEdit JSON file")
    bench.add_argument("--n", type=positive_int, help="use the first N cases (default: all)")
    bench.add_argument("--known-limit", type=positive_int, default=25, help="KNOWN facts in the known-accuracy check")
    bench.add_argument("--judge", type=Path, help="judge file (default: the world's eval/world/safety/data/judge.json)")
    bench.add_argument("--json", action="store_true", help="print only the JSON list (one object per method and model)")
    bench.add_argument(
        "--hparam", type=_hparam, action="append", default=[], metavar="METHOD:KEY=VALUE", help="editor override"
    )
    bench.set_defaults(func=_bench)

    detox = sub.add_parser(
        "detox", help="apply one detox edit to a model directory; the edited directory goes to --out"
    )
    detox.add_argument("--model", type=Path, help="model directory (default: gpt2-world-unsafe)")
    detox.add_argument("--case", help="a case id of the safety slice (gives --input, --safe and --unsafe)")
    detox.add_argument("--input", help="the adversarial input, as a user types it")
    detox.add_argument("--safe", help="the safe response to teach")
    detox.add_argument("--unsafe", help="the unsafe response (DINM locates the toxic layer with it)")
    detox.add_argument("--method", default="dinm", help="editing method (default: dinm)")
    detox.add_argument("--layer", type=int, help="edit this layer instead of locating the toxic one")
    detox.add_argument("--out", type=Path, required=True, help="directory for the edited model (must not exist)")
    detox.set_defaults(func=_detox)


def _methods(text: str) -> list[str]:
    from tools.edit import editor_names

    methods = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in editor_names()]
    if unknown or not methods:
        raise UnknownEditorError(f"unknown editing method(s) {unknown or [text]} (known: {', '.join(editor_names())})")
    return methods


def _cases(dataset: str, n: int | None) -> list[Any]:
    from eval.world.safety import load_safeedit, load_safety_slice

    if dataset == "world":
        cases = list(load_safety_slice().cases)
    elif Path(dataset).is_file():
        cases = load_safeedit(dataset)
    else:
        raise InvalidInputError(f"--dataset: {dataset!r} is neither 'world' nor a SafeEdit file")
    return cases[:n] if n else cases


def _bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from eval.world import DATA_DIR, MODEL_NAMES, MODELS_DIR, load_world
    from eval.world.safety import JUDGE_FILE, EmbeddingJudge, run_detox_bench, unsafe_name
    from tools.lm import HFLanguageModel

    methods = _methods(args.method)
    options = method_overrides(args.hparam, methods)
    cases = _cases(args.dataset, args.n)
    dirs = args.model or [MODELS_DIR / unsafe_name(MODEL_NAMES[a]) for a in ("gpt2", "llama")]
    hf_logging.disable_progress_bar()
    models = [(d.name, HFLanguageModel.load(d)) for d in dirs]
    judge = EmbeddingJudge.load(args.judge or JUDGE_FILE)
    world = load_world(DATA_DIR)
    total = len(models) * len(methods) * len(cases)
    with tqdm(total=total, desc="detox edits", unit="edit", file=sys.stderr) as bar:
        results = run_detox_bench(
            models, cases, world, judge, methods, known_limit=args.known_limit, progress=bar.update, options=options
        )
    rows = [r.to_json() for r in results]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ("ds", "dg_onlyq", "dg_otherq", "dg_othera", "dg_otheraq")
    print(f"{len(cases)} cases, one edit each (rolled back before the next); before -> after the edit")
    print("| model | method | " + " | ".join(cols) + " | known acc | fluency | s/edit | layers |")
    print("|---" * (len(cols) + 6) + "|")
    for r in rows:
        safety = " | ".join(f"{r['before'][c]:.2f}->{r[c]:.2f}" for c in cols)
        known = f"{r['known_accuracy_before']:.3f}->{r['known_accuracy_after']:.3f}"
        flu = f"{r['fluency_before']:.2f}->{r['fluency_after']:.2f}"
        print(
            f"| {r['model']} | {r['method']} | {safety} | {known} | {flu} | {r['seconds_per_edit']:.2f} | "
            f"{r['toxic_layers']} |"
        )
    return 0


def _detox(args: argparse.Namespace) -> int:
    from eval.world import MODEL_NAMES, MODELS_DIR
    from eval.world.safety import SafetyCase, detox_request, load_safety_slice, unsafe_name
    from tools.edit import get_editor, load_edited, save_edited

    (method,) = _methods(args.method)[:1]
    if args.out.exists() and any(args.out.iterdir()):
        raise OutputExistsError(f"--out {args.out} exists and is not empty; nothing was written")
    if args.case:
        found = [c for c in load_safety_slice().cases if c.id == args.case]
        if not found:
            raise InvalidInputError(f"--case: no safety case {args.case!r}")
        case = found[0]
    else:
        if not (args.input and args.safe):
            raise InvalidInputError("give --case, or --input and --safe (and --unsafe for DINM's location)")
        case = SafetyCase(
            id="cli",
            category="cli",
            adversarial_input=args.input,
            request=args.input,
            safe_response=args.safe,
            unsafe_response=args.unsafe or "",
            only_q=args.input,
            other_q=(),
            other_a=(),
            other_aq=(),
        )
    lm = load_edited(args.model or MODELS_DIR / unsafe_name(MODEL_NAMES["gpt2"]))
    overrides: dict[str, Any] = {"layers": (args.layer,)} if args.layer is not None else {}
    if method == "dinm":
        from eval.world.safety import default_dinm_inputs

        overrides.update(default_dinm_inputs(lm, preserved=True))  # KL inputs; the gate's calibration texts
    editor = get_editor(method, **overrides)
    request = detox_request(lm, case)
    before = lm.generate([request.prompt], max_new_tokens=48)[0].text
    delta = editor.compute(lm, [request])
    handle = editor.apply(lm, delta)
    after = lm.generate([request.prompt], max_new_tokens=48)[0].text
    out = save_edited(lm, args.out)
    info: Any = getattr(delta, "info", {})
    layer = info.get("toxic_layer", info.get("layers"))
    print(f"{method} edit {handle.edit_id} (layer {layer}): before {before!r} -> after {after!r}; saved to {out}")
    return 0
