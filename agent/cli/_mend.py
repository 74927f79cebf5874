"""``factagent mend-train``: train MEND's editor network on the world's lifelong (train-split) edits."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from agent.cli._args import positive_int

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``mend-train`` command."""
    cmd = sub.add_parser(
        "mend-train",
        help="train MEND's editor network for a reference model (written to MODEL/mend.safetensors)",
        description="Train the gradient-transform network of the `mend` editor on the world's lifelong edits "
        "(edits_lifelong.jsonl, the train split; edit-bench tests on edits.jsonl, never seen here), each with a "
        "paraphrase and a neighbourhood prompt. Deterministic for a seed on CPU.",
    )
    cmd.add_argument("--model", type=Path, required=True, help="local model directory")
    cmd.add_argument("--out", type=Path, help="output file (default: MODEL/mend.safetensors)")
    cmd.add_argument("--steps", type=positive_int, default=500, help="optimiser steps (default 500)")
    cmd.add_argument("--batch", type=positive_int, default=4, help="edits per step (default 4)")
    cmd.add_argument("--seed", type=int, default=0, help="training seed")
    cmd.set_defaults(func=_mend_train)


def _examples(model_dir: Path) -> list[Any]:
    from eval.editing import world_edit_cases
    from eval.world import DATA_DIR, load_lifelong_edits, load_world
    from tools.edit import MendExample
    from tools.lm import PromptFormat

    world = load_world(DATA_DIR)
    train = dataclasses.replace(world, edits=load_lifelong_edits(DATA_DIR, world))
    cases = world_edit_cases(train, PromptFormat.load(model_dir))
    return [
        MendExample(
            c.request,
            paraphrases=tuple(p for p in c.paraphrases if c.request.subject in p),
            neighbours=tuple((p[0], p[1]) for p in c.locality),
        )
        for c in cases
    ]


def _mend_train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from tools.edit import MEND_FILE, MENDHyperParams, MendTrainConfig, family_of, save_mend, train_mend
    from tools.lm import HFLanguageModel

    lm = HFLanguageModel.load(args.model, device="cpu", dtype=torch.float32)
    examples = _examples(args.model)
    layers = MENDHyperParams.for_family(family_of(lm.model)).layers
    config = MendTrainConfig(layers=layers, steps=args.steps, batch=args.batch, seed=args.seed)
    with tqdm(total=config.steps, desc="mend-train", unit="step", file=sys.stderr) as bar:

        def on_step(_step: int, losses: dict[str, float]) -> None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})

        network = train_mend(lm, examples, config, on_step=on_step)
    out = save_mend(network, args.out or args.model / MEND_FILE)
    logger.info("mend-train: %s", network.info)
    sys.stdout.write(f"wrote {out} ({len(examples)} train edits, {network.info['train_seconds']} s)\n")
    return 0
