"""``factagent world build`` and ``factagent world check``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Literal

_METRICS = (
    "known_train",
    "known_heldout",
    "known_heldout_cloze",
    "unknown",
    "context_unknown",
    "context_counterfactual",
)
_TARGETS = {
    "known_train": ">= 0.95",
    "known_heldout": ">= 0.60",
    "known_heldout_cloze": "report",
    "unknown": "low",
    "context_unknown": ">= 0.90",
    "context_counterfactual": ">= 0.85",
}


def _count(minimum: int) -> Any:
    """An argparse type: an integer >= ``minimum`` (argparse reports anything else as a usage error)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def register(sub: Any) -> None:
    """Add the ``world`` command group."""
    world = sub.add_parser("world", help="the reference world: build it, check its models")
    cmds = world.add_subparsers(dest="world_command", required=True, metavar="SUBCOMMAND")
    build = cmds.add_parser("build", help="regenerate world files and reference models (seeded; ~60 min on 2 cores)")
    build.add_argument("--data-dir", type=Path, help="where to write the world (default: the bundled one)")
    build.add_argument("--models-dir", type=Path, help="where to write the models (default: the bundled ones)")
    build.add_argument("--epochs", type=_count(1), help="override the training epochs (for quick trials)")
    build.add_argument(
        "--arch",
        choices=("gpt2", "llama", "llama-large"),
        action="append",
        help="train only these models (default: all three; llama-large is the larger LLaMA of issue 18)",
    )
    build.add_argument("--world-only", action="store_true", help="write the world files, train nothing")
    build.add_argument(
        "--concepts-only",
        action="store_true",
        help="run only the last stage: train <model>-concepts from the models in place (issue 22)",
    )
    build.add_argument(
        "--zh-only",
        action="store_true",
        help="run only the Chinese stage: train <model>-zh (grown vocabulary) from the models in place (issue 23)",
    )
    build.add_argument(
        "--guard-only",
        action="store_true",
        help="retrain only the request guard (eval/world/safety/data/guard.json) from the world in place",
    )
    build.add_argument(
        "--from-phase", type=_count(0), default=0, help="resume: start at this training phase from the models in place"
    )
    build.add_argument("--probe-every", type=_count(0), default=0, help="log a quick check every N training steps")
    build.add_argument("--device", default="cpu", help="torch device to train on, e.g. cuda (default: cpu)")
    build.add_argument("--batch", type=_count(1), help="sequences per training step (default: the recipe's 32)")
    build.add_argument("--threads", type=_count(1), help="torch threads per training process (default: cores/models)")
    build.set_defaults(func=_build)
    check = cmds.add_parser("check", help="what each reference model knows and whether it reads its context")
    check.add_argument("--model", type=Path, action="append", help="model directory (default: both bundled models)")
    check.add_argument("--world", type=Path, help="world directory (default: the bundled one)")
    check.add_argument("--limit", type=_count(1), help="score an evenly spaced sample of N facts per split")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(func=_check)


def _variant_names(archs: tuple[str, ...]) -> list[str]:
    """The model directories the variant stages start from (the larger LLaMA has no variants)."""
    from eval.world import MODEL_NAMES

    return [MODEL_NAMES[a] for a in archs if a in MODEL_NAMES]


def _build(args: argparse.Namespace) -> int:
    from eval.world import DATA_DIR, MODELS_DIR, build_all, write_world_files

    data_dir = args.data_dir or DATA_DIR
    if args.world_only:
        world = write_world_files(data_dir)
        print(f"world written to {data_dir}: {world.manifest['counts']}")
        return 0
    if args.guard_only:
        import json

        from eval.world.safety import build_safety_slice, train_guard

        print(json.dumps(train_guard(build_safety_slice(), data_dir), indent=1))
        return 0
    from eval.world import ALL_MODEL_NAMES

    archs = tuple(args.arch or ALL_MODEL_NAMES)
    if args.concepts_only:
        from eval.world import build_concept_stage

        variants = build_concept_stage(data_dir, args.models_dir or MODELS_DIR, _variant_names(archs))
        for name, phase in variants.items():
            print(f"{name}: {phase['steps']} steps, {phase['seconds']:.0f}s, final loss {phase['final_loss']}")
        return 0
    if args.zh_only:
        from eval.world import build_zh_stage

        variants = build_zh_stage(data_dir, args.models_dir or MODELS_DIR, _variant_names(archs))
        for name, phase in variants.items():
            print(f"{name}: {phase['steps']} steps, {phase['seconds']:.0f}s, final loss {phase['final_loss']}")
        return 0
    print(f"building world and training {', '.join(archs)} (progress on stderr with -v)")
    result = build_all(
        data_dir=data_dir,
        models_dir=args.models_dir or MODELS_DIR,
        architectures=archs,
        epochs=args.epochs,
        probe_every=args.probe_every,
        from_phase=args.from_phase,
        device=args.device,
        batch=args.batch,
        threads=args.threads,
    )
    for arch, info in result["models"].items():
        seconds = sum(phase["seconds"] for phase in info["phases"])
        steps = sum(phase["steps"] for phase in info["phases"])
        print(f"{arch}: {info['parameters'] / 1e6:.2f}M parameters, {steps} steps, {seconds:.0f}s")
    print(f"total build time {result['seconds']:.0f}s")
    return 0


def _check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from eval.world import (
        DATA_DIR,
        MODEL_NAMES,
        MODELS_DIR,
        load_world,
        majority_baseline,
        run_check,
        run_slice_check,
        trained_slices,
    )
    from tools.lm import HFLanguageModel, check_model_dir

    world = load_world(args.world or DATA_DIR)
    model_dirs = args.model or [MODELS_DIR / name for name in MODEL_NAMES.values()]
    for model_dir in model_dirs:
        check_model_dir(model_dir)  # fail before any work starts
    results: dict[str, dict[str, float | int]] = {}
    slices: dict[str, dict[str, Any]] = {}
    for model_dir in tqdm(model_dirs, desc="models", disable=args.json):
        started = time.time()
        lm = HFLanguageModel.load(model_dir)
        results[lm.name] = run_check(lm, world, limit=args.limit)
        seen = trained_slices(Path(model_dir))  # a model built before a slice existed is not scored on it
        slices[lm.name] = {name: run_slice_check(lm, world, name, limit=args.limit) for name in _SLICES if name in seen}
        results[lm.name]["seconds"] = round(time.time() - started, 1)
    if args.json:
        out = {name: {**{k: v for k, v in r.items() if k != "seconds"}, **slices[name]} for name, r in results.items()}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    names = list(results)
    print(f"\n{'metric':<24}{'target':>10}" + "".join(f"{n:>16}" for n in names))
    for metric in _METRICS:
        print(f"{metric:<24}{_TARGETS[metric]:>10}" + "".join(f"{results[n][metric]:>16.3f}" for n in names))
    for extra in ("n_known", "n_unknown", "seconds"):
        print(f"{extra:<24}{'':>10}" + "".join(f"{results[n][extra]:>16}" for n in names))
    baseline = majority_baseline(world)
    overall = baseline.pop("overall")
    print(f"\nmajority-object baseline on UNKNOWN facts (what guessing scores): {overall:.3f} overall; per relation:")
    for rel, value in sorted(baseline.items(), key=lambda kv: -kv[1]):
        print(f"  {rel:<32}{value:.3f}")
    for name in names:
        for slice_name, table in slices[name].items():
            _print_slice(name, slice_name, table)
    return 0


_SLICES: tuple[Literal["zh", "concepts"], ...] = ("zh", "concepts")
_SLICE_METRICS = ("known_train", "known_heldout", "unknown", "context_unknown", "context_counterfactual")


def _print_slice(model: str, slice_name: str, table: dict[str, dict[str, float | int]]) -> None:
    """One model's figures of one slice, a row per category (targets: known_train >= 0.90,
    context_unknown >= 0.85 for the Chinese slice)."""
    if not table:
        return
    print(f"\n{model}: {slice_name} slice per category")
    print(f"{'category':<22}" + "".join(f"{m:>24}" for m in _SLICE_METRICS) + f"{'n_known':>9}")
    for category, figures in table.items():
        cells = "".join(f"{figures[m]:>24.3f}" if m in figures else f"{'-':>24}" for m in _SLICE_METRICS)
        print(f"{category:<22}{cells}{figures['n_known']:>9}")
