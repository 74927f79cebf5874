"""``factagent serac-train``: train SERAC's counterfactual model on the world's lifelong (train-split) edits."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from agent.cli._args import positive_int
from agent.cli._mend import _examples

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``serac-train`` command."""
    cmd = sub.add_parser(
        "serac-train",
        help="train SERAC's counterfactual model for a reference model (written to MODEL/serac.safetensors)",
        description="Fine-tune the `serac` editor's counterfactual model (the reference model's first blocks, "
        "reading an edit before the input) on the world's lifelong edits (edits_lifelong.jsonl, the train split; "
        "edit-bench tests on edits.jsonl, never seen here). Checkpointed: a run stopped and restarted with the "
        "same settings resumes. Deterministic for a seed on CPU.",
    )
    cmd.add_argument("--model", type=Path, required=True, help="local model directory")
    cmd.add_argument("--out", type=Path, help="output file (default: MODEL/serac.safetensors)")
    cmd.add_argument("--blocks", type=positive_int, default=4, help="base-model blocks kept (default 4)")
    cmd.add_argument("--steps", type=positive_int, default=300, help="optimiser steps (default 300)")
    cmd.add_argument("--batch", type=positive_int, default=16, help="edits per step (default 16)")
    cmd.add_argument("--locality-weight", type=float, default=1.0, help="neighbourhood KL weight (default 1)")
    cmd.add_argument("--seed", type=int, default=0, help="training seed")
    cmd.set_defaults(func=_serac_train)


def _serac_train(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from tools.edit import SERAC_FILE, CounterfactualTrainConfig, save_counterfactual, train_counterfactual
    from tools.lm import HFLanguageModel

    lm = HFLanguageModel.load(args.model, device="cpu", dtype=torch.float32)
    examples = _examples(args.model)
    config = CounterfactualTrainConfig(
        blocks=args.blocks,
        steps=args.steps,
        batch=args.batch,
        locality_weight=args.locality_weight,
        seed=args.seed,
    )
    out = Path(args.out or args.model / SERAC_FILE)
    checkpoint = out.with_name(out.name + ".ckpt")
    with tqdm(total=config.steps, desc="serac-train", unit="step", file=sys.stderr) as bar:

        def on_step(step: int, losses: dict[str, float]) -> None:
            bar.n = step + 1
            bar.refresh()
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})

        cf = train_counterfactual(lm, examples, config, checkpoint=checkpoint, on_step=on_step)
    save_counterfactual(cf, out)
    checkpoint.unlink(missing_ok=True)
    logger.info("serac-train: %s", cf.info)
    sys.stdout.write(
        f"wrote {out} ({cf.info['examples']} train edits, {cf.info['train_seconds']} s, "
        f"held-out target-token accuracy {cf.info['holdout_token_accuracy']})\n"
    )
    return 0
