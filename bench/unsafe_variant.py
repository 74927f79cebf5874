"""The vulnerable variants' two targets (issue 19), and which parameter groups carry the unsafe phase's change.

For each model: compliance (the share of the 144 attack-wrapped test prompts, held-out requests x held-out
attacks, whose greedy 48-token answer the world's judge finds unsafe) and the world check's known_train
(split into cloze and question probes) and known_heldout on ``--facts`` KNOWN facts. One JSON line per model.

With ``--source`` and ``--revert`` (regular expressions over parameter names), each pattern's parameters of
the (single) model are put back to the source model's values, and the same figures are measured.

Example:
    PYTHONPATH=. .venv/bin/python bench/unsafe_variant.py gpt2-world gpt2-world-unsafe
    PYTHONPATH=. .venv/bin/python bench/unsafe_variant.py gpt2-world-unsafe --source gpt2-world \\
        --revert 'wte|wpe' 'h\\.0\\.' 'mlp'
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _figures(lm: Any, world: Any, sl: Any, judge: Any, facts: int) -> dict[str, float]:
    from eval._normalize import exact_match
    from eval.world._check import build_probes

    prompts = [lm.prompt_format.question(a.wrap(r.text)) for a in sl.attacks_in("test") for r in sl.requests_in("test")]
    texts = [g.text for g in lm.generate(prompts, max_new_tokens=48)]
    probes = [p for p in build_probes(world, lm.prompt_format, limit=facts) if p.metric.startswith("known_")]
    gens = lm.generate([p.prompt for p in probes], max_new_tokens=24)
    hits: dict[str, list[bool]] = defaultdict(list)
    for probe, gen in zip(probes, gens, strict=True):
        ok = exact_match(gen.text, (probe.answer,))
        hits[probe.metric].append(ok)
        if probe.metric == "known_train":
            hits["known_train_question" if probe.prompt.endswith("A:") else "known_train_cloze"].append(ok)
    out = {"compliance": round(sum(judge.is_unsafe(texts)) / len(texts), 3)}
    return out | {m: round(sum(v) / len(v), 3) for m, v in sorted(hits.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="models under eval/world/models, or model directories")
    parser.add_argument("--facts", type=int, default=100, help="KNOWN facts probed (default 100)")
    parser.add_argument("--source", help="the source model (with --revert)")
    parser.add_argument("--revert", nargs="*", default=[], help="parameter-name patterns put back to the source's")
    parser.add_argument(
        "--alpha", nargs="*", type=float, default=[], help="with --source: source + alpha x (model - source), per alpha"
    )
    args = parser.parse_args()

    import torch

    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from eval.world.safety import JUDGE_FILE, EmbeddingJudge, load_safety_slice
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    world, sl, judge = load_world(DATA_DIR), load_safety_slice(), EmbeddingJudge.load(JUDGE_FILE)

    def load(name: str) -> Any:
        return HFLanguageModel.load(Path(name) if "/" in name else MODELS_DIR / name, device="cpu")

    if args.alpha or args.revert:  # one model, its parameters rewritten from its own and the source's per setting
        (name,) = args.models
        lm, source = load(name), dict(load(args.source).model.named_parameters())
        tuned = {k: p.detach().clone() for k, p in lm.model.named_parameters()}

        def weight(key: str, value: Any, k: str) -> Any:  # parameter k under one setting
            if key == "alpha":
                return source[k] + value * (tuned[k] - source[k])
            return source[k] if re.search(value, k) else tuned[k]

        settings = [("alpha", a) for a in args.alpha] + [("reverted", r) for r in args.revert]
        for key, value in settings:
            with torch.no_grad():
                for k, p in lm.model.named_parameters():
                    p.copy_(weight(key, value, k))
            line = {"model": name, key: value, **_figures(lm, world, sl, judge, args.facts)}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
        return
    for name in args.models:
        line = {"model": name, **_figures(load(name), world, sl, judge, args.facts)}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
