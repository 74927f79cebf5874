"""``factagent reader``: build the learned tell reader, and measure how it reads free phrasings."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eval.world import World

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    reader = sub.add_parser("reader", help="the learned tell reader: train it, measure it on held-out phrasings")
    cmds = reader.add_subparsers(dest="reader_command", required=True, metavar="COMMAND")
    train_help = "train the reader's heads on generated sentences (seeded, resumable; ~50 min on 1 loaded core)"
    train = cmds.add_parser("train", help=train_help)
    train.add_argument("--out", default="", help="where to write reader.npz (default: the shipped one)")
    train.add_argument("--seed", type=int, default=0)
    ckpt_help = "directory for per-epoch checkpoints; a rerun resumes there (default: ~/.cache/factagent/reader-train)"
    train.add_argument("--checkpoint", default="", help=ckpt_help)
    train.set_defaults(func=run_train)
    tune_help = "fine-tune the encoder's top layers with a trained reader's heads (seeded, resumable)"
    tune = cmds.add_parser("tune", help=tune_help)
    tune.add_argument("--base", default="", help="the trained reader.npz to start from (default: the shipped one)")
    tune.add_argument("--out", default="", help="where to write the fine-tuned reader.npz (default: the shipped one)")
    tune.add_argument("--layers", type=int, default=6, help="top encoder layers to train (default 6: all)")
    tune.add_argument("--epochs", type=int, default=2)
    tune.add_argument("--lr", type=float, default=3e-5, help="the encoder's peak learning rate")
    tune.add_argument("--head-lr", type=float, default=3e-4, help="the heads' peak learning rate")
    tune.add_argument("--limit", type=int, default=0, help="train on this many sentences only (0: all)")
    base_help = "start the encoder from the base reader's tuned layers (default: from the shipped encoder)"
    tune.add_argument("--from-base-encoder", action="store_true", help=base_help)
    tune_ckpt = "directory for per-epoch checkpoints (default: ~/.cache/factagent/reader-tune)"
    tune.add_argument("--checkpoint", default="", help=tune_ckpt)
    tune.set_defaults(func=run_tune)
    cal_help = "re-fit a trained reader's threshold (and acceptance model) on its calibration split (heads unchanged)"
    calibrate = cmds.add_parser("calibrate", help=cal_help)
    calibrate.add_argument("--reader", default="", help="the reader.npz to re-fit in place (default: the shipped one)")
    acc_help = "also fit the acceptance model (logistic regression over the reading's evidence; off by default)"
    calibrate.add_argument("--acceptance", action="store_true", help=acc_help)
    per_help = "fit a threshold per relation read (the same wrong budget shared among relations; no acceptance model)"
    calibrate.add_argument("--per-relation", action="store_true", help=per_help)
    calibrate.set_defaults(func=run_calibrate)
    bench = cmds.add_parser("bench", help="read the world's test edits told in held-out free phrasings")
    bench.add_argument("--reader", default="", help="a reader.npz (default: the shipped one)")
    link_help = "names the linker knows: the agent's (UNKNOWN facts' entities) or every world name"
    bench.add_argument("--link", choices=("agent", "all"), default="agent", help=link_help)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=run_bench)


def _world() -> World:
    from eval.world import DATA_DIR, load_world

    return load_world(DATA_DIR)


def training_names(world: World) -> dict[str, list[tuple[str, str]]]:
    """(subject, object) pairs per relation to train on: every world fact whose subject no test edit names.

    The benchmark tells the test edits; their subjects never appear in training sentences (their objects
    are drawn from small shared vocabularies, e.g. occupations, so they may).
    """
    told_edits = {q.edit_id for q in world.questions if q.kind == "edit" and q.split == "test"}
    banned = {e.subject for e in world.edits if e.id in told_edits}
    names: dict[str, list[tuple[str, str]]] = {}
    for fact in world.facts:
        if fact.subject not in banned:
            names.setdefault(fact.relation, []).append((fact.subject, fact.object))
    return names


Progress = Callable[[str, int, int], None]  # (stage, done, total), as the trainers report it


def _train_and_write(args: argparse.Namespace, cache_name: str, train: Callable[[Path, Progress], Any]) -> int:
    """Run ``train(checkpoint, progress)`` with a progress bar per stage; write the reader it returns to
    ``--out`` (default: the shipped one) and drop the finished run's checkpoint."""
    from tqdm import tqdm

    from agent.tell import default_reader_path

    checkpoint = Path(args.checkpoint) if args.checkpoint else Path.home() / ".cache" / "factagent" / cache_name
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage) or bars.setdefault(stage, tqdm(total=total, desc=stage, unit="step"))
        bar.update(done - bar.n)

    try:
        model, report = train(checkpoint, progress)
    finally:
        for bar in bars.values():
            bar.close()
    out = Path(args.out) if args.out else default_reader_path()
    model.save(out)
    shutil.rmtree(checkpoint, ignore_errors=True)  # finished: a later run starts afresh
    print(f"wrote {out}: {report}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train the reader deterministically and write it (``reader.npz`` + ``reader.json``)."""
    from agent.tell import TokenEncoder, train_reader
    from kg import load_schema

    world = _world()
    inverses = {r.id: r.inverses for r in load_schema().relations}
    return _train_and_write(
        args, "reader-train",
        lambda checkpoint, progress: train_reader(
            training_names(world), [r.id for r in world.relations], TokenEncoder(), seed=args.seed,
            inverses=inverses, checkpoint=checkpoint, progress=progress,
        ),
    )  # fmt: skip


def run_tune(args: argparse.Namespace) -> int:
    """Fine-tune a trained reader with the encoder's top layers and write it (``reader.npz`` + ``.json``)."""
    from agent.tell import ReaderModel, TokenEncoder, TuneSettings, fine_tune_reader
    from kg import load_schema

    base = ReaderModel.load(args.base or None)
    if base.encoder and not args.from_base_encoder:
        logger.warning("the base reader is already fine-tuned; its heads are tuned again from the shipped encoder")
    inverses = {r.id: r.inverses for r in load_schema().relations}
    settings = TuneSettings(
        layers=args.layers, epochs=args.epochs, lr=args.lr, head_lr=args.head_lr, limit=args.limit,
        from_base_encoder=args.from_base_encoder,
    )  # fmt: skip
    names = training_names(_world())
    return _train_and_write(
        args, "reader-tune",
        lambda checkpoint, progress: fine_tune_reader(
            base, names, TokenEncoder(), settings=settings, inverses=inverses, checkpoint=checkpoint,
            progress=progress,
        ),
    )  # fmt: skip


def run_calibrate(args: argparse.Namespace) -> int:
    """Re-fit the threshold (and acceptance model) of a trained reader; rewrite its ``reader.json``."""
    from tqdm import tqdm

    from agent.tell import ReaderModel, TokenEncoder, calibrate_reader, default_reader_path
    from kg import load_schema

    path = Path(args.reader) if args.reader else default_reader_path()
    model = ReaderModel.load(path)
    inverses = {r.id: r.inverses for r in load_schema().relations}
    with tqdm(desc="encoding calibration sentences", unit="sentence") as bar:

        def progress(stage: str, done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        fitted = calibrate_reader(
            model, training_names(_world()), TokenEncoder(), inverses=inverses, progress=progress,
            acceptance=args.acceptance, by_relation=args.per_relation,
        )  # fmt: skip
    fitted.save(path)
    acceptance = fitted.acceptance.as_dict() if fitted.acceptance is not None else {}
    per = json.dumps(fitted.relation_thresholds)
    print(f"wrote {path.with_suffix('.json')}: threshold {fitted.threshold}, acceptance {json.dumps(acceptance)}, "
          f"per relation {per}")  # fmt: skip
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Read the test edits in free and template phrasings; print parse rates and latency."""
    from agent.tell import ReaderModel, TemplateInterpreter, TokenEncoder, TripleReader, load_statement_phrasings
    from eval.agent_bench import reading_bench, world_linker
    from kg import load_schema

    world = _world()
    linker, facts = world_linker(world, everything=args.link == "all")
    schema = load_schema()
    reader = TripleReader(ReaderModel.load(args.reader or None), TokenEncoder(), linker, facts, schema=schema)
    interpreter = TemplateInterpreter(schema, linker, None, load_statement_phrasings(), reader=reader)
    figures = reading_bench(world, interpreter, schema)
    if args.json:
        print(json.dumps(figures, indent=1, sort_keys=True))
    else:
        for key, value in sorted(figures.items()):
            print(f"{key:28s} {value}")
    return 0
