# ruff: noqa: T201
"""Concept-bench on the DEV concept edits (:func:`eval.concepts.dev_concept_cases`), to choose settings.

The dev edits are the world's KNOWN concepts taking other sources' definitions (never a test edit's pair); the
row is ``run_concept_bench``'s, without Concept Consistency. ``--method alphaedit`` (and ``rome`` with
``--hparam preserve_prompt_weight=...`` or ``preserve_output_weight=...``) gets the train-side definition prompts as
preserved keys, the answered training question included, unless ``--no-preserve``.

Example:
    PYTHONPATH=. python bench/concept_dev.py eval/world/models/llama-world-concepts rome --hparam layers=[1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from eval.concepts import (  # noqa: E402
    dev_concept_cases,
    editor_for,
    preserved_definition_prompts,
    run_concept_bench,
    uses_preserved_prompts,
)
from eval.world import DATA_DIR, load_world  # noqa: E402
from tools.edit import load_edited  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("method")
    ap.add_argument("--hparam", action="append", default=[], help="k=v (JSON value)")
    ap.add_argument("--n", type=int, default=40, help="dev edits drawn (those the model knows are run)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--no-preserve", action="store_true")
    ap.add_argument(
        "--preserve-question-form",
        action="store_true",
        help="also the held-out concepts' 'What is a <label>?' among the preserved prompts (never a locality prompt)",
    )
    args = ap.parse_args(argv)
    lm = load_edited(args.model, device="cpu")
    cases = dev_concept_cases(DATA_DIR, lm.prompt_format, args.n)
    hp = {k: json.loads(v) for k, v in (h.split("=", 1) for h in args.hparam)}
    if uses_preserved_prompts(editor_for(args.method)[1], hp) and not args.no_preserve:
        hp["preserve_prompts"] = preserved_definition_prompts(
            DATA_DIR,
            exclude={p for c in cases for p, _ in c.locality},
            prompt_format=lm.prompt_format,
            question_form=args.preserve_question_form,
        )
    row = run_concept_bench(
        lm,
        args.method,
        cases,
        limit=args.limit,
        corpus=[d.text for d in load_world(DATA_DIR).documents],
        cache_dir=Path.home() / ".factagent" / "cache" / "stats",
        hparams=hp,
    )
    row.pop("model", None)
    settings = {k: v for k, v in hp.items() if k != "preserve_prompts"}
    preserve = "preserve_prompts" in hp
    print(json.dumps({"settings": settings, "preserve": preserve, "question_form": args.preserve_question_form} | row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
