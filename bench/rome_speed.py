"""ROME speed (issue 30): seconds per single edit and KnowEdit scores, two settings side by side in one run.

The machine is shared, so settings are compared in one process on one loaded model, interleaved per case:
case 1 under every setting, then case 2, ... Each edit is the single-edit protocol of ``edit-bench
--edit-mode single``: ``compute`` + ``apply`` on the unedited model (timed), the case's prompts probed, then
``rollback_all`` (bit-identical weights). Key statistics are computed once (a warm-up edit per setting, not
timed), as in ``edit-bench``.

Settings: ``before`` is the editor as it was before issue 30 (five sampled prefixes, sampled again for every edit,
every block run at every Adam step), ``after`` the current defaults (the same five prefixes, sampled once per
model state; per step only the blocks above the edited MLP; since issue 30's sixth session the value fit by capped
L-BFGS with its stop at 0.005, ``--hparam v_optimizer=adam`` is the Adam fit of the fourth); ``--hparam KEY=VALUE``
overrides ``after`` and ``--variant`` adds settings, e.g. the faster option
``fast:n_context_templates=2,v_early_stop_loss=0.02``.

``--seed`` draws other cases (seed 0 are the edits of the README's tables; a setting chosen on them is confirmed
on ``--seed 1``). Per setting the table gives its median against ``before``'s and whether reliability,
generalization and locality are each equal or better than ``before``'s, teacher-forced and greedy.

Example:
    .venv/bin/python bench/rome_speed.py --n 100 --variant fast:n_context_templates=2,v_early_stop_loss=0.02
    # a Markdown table on stdout (per setting: median / mean s per edit and the scores), JSON with --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

BEFORE: dict[str, Any] = {
    "v_optimizer": "adam",
    "v_early_stop_loss": 0.01,
    "n_context_templates": 5,
    "cache_context_templates": False,
    "v_skip_below": False,
    "v_fused_activation": False,
}
_METRICS = ("reliability", "generalization", "locality", "portability")


def _parse_hparam(text: str) -> tuple[str, Any]:
    key, _, raw = text.partition("=")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def run(
    n: int,
    seed: int,
    after: dict[str, Any],
    variants: dict[str, dict[str, Any]] | None = None,
    model: str = "gpt2-world",
) -> dict[str, Any]:
    """Edit ``n`` selected world cases under each setting; per setting the seconds and the aggregate scores."""
    import torch
    from tqdm import tqdm

    from eval.editing import select_cases, world_edit_cases
    from eval.editing._metrics import MODES, LMProber, aggregate, measure_after, measure_before, score_case
    from eval.editing._runner import without_edited_neighbours
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from tools.edit import get_editor, journal_for
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    lm = HFLanguageModel.load(MODELS_DIR / model, device="cpu")
    world = load_world(DATA_DIR)
    corpus = [d.text for d in world.documents]
    cases = without_edited_neighbours(select_cases(lm, world_edit_cases(world, lm.prompt_format), n, seed=seed))
    prober = LMProber(lm)
    baseline = measure_before(prober, cases)
    settings = {"before": BEFORE, "after": after, **(variants or {})}
    with tempfile.TemporaryDirectory() as cache:
        editors = {name: get_editor("rome", corpus=corpus, cache_dir=cache, **hp) for name, hp in settings.items()}
        for editor in editors.values():  # key statistics and other one-off work, untimed
            editor.compute(lm, [cases[0].request])
        passes = [0]  # forward passes of the decoder (load-independent cost)
        lm.model.base_model.register_forward_pre_hook(lambda *_: passes.__setitem__(0, passes[0] + 1))
        forwards: dict[str, list[int]] = {name: [] for name in settings}
        seconds: dict[str, list[float]] = {name: [] for name in settings}
        probes: dict[str, list[Any]] = {name: [] for name in settings}
        for case in tqdm(cases, desc="editing", unit="case", file=sys.stderr):
            for name, editor in editors.items():
                start, before = time.perf_counter(), passes[0]
                editor.apply(lm, editor.compute(lm, [case.request]))
                seconds[name].append(time.perf_counter() - start)
                forwards[name].append(passes[0] - before)
                probes[name].extend(measure_after(prober, [case]))
                journal_for(lm.model).rollback_all()
    rows = {}
    for name in settings:
        row: dict[str, Any] = {
            "hparams": settings[name],
            "median_s": statistics.median(seconds[name]),
            "mean_s": statistics.fmean(seconds[name]),
            "forwards": statistics.fmean(forwards[name]),
        }
        for mode in MODES:
            per_case = zip(cases, baseline, probes[name], strict=True)
            scores = aggregate([score_case(c, b, a, mode) for c, b, a in per_case])
            row[mode] = {k: scores[k] for k in _METRICS}
        rows[name] = row
    for row in rows.values():
        row["median_vs_before"] = row["median_s"] / rows["before"]["median_s"]
        row["not_worse"] = not_worse(row, rows["before"])
    ratio = rows["after"]["median_s"] / rows["before"]["median_s"]
    return {"model": model, "n": len(cases), "settings": rows, "median_ratio": ratio, "load_avg": os.getloadavg()}


def not_worse(row: dict[str, Any], before: dict[str, Any]) -> bool:
    """True when reliability, generalization and locality are each >= ``before``'s, teacher-forced and greedy."""
    return all(
        row[mode][k] >= before[mode][k]
        for mode in ("teacher_forced", "generation")
        for k in ("reliability", "generalization", "locality")
        if before[mode][k] is not None and row[mode][k] is not None
    )


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table."""
    lines = [
        "| setting | mode | median s/edit | mean s/edit | forwards/edit | median vs before | reliability "
        "| generalization | locality | portability | rel/gen/loc >= before |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["settings"].items():
        for mode in ("teacher_forced", "generation"):
            metrics = " | ".join("-" if (v := row[mode][k]) is None else f"{v:.3f}" for k in _METRICS)
            lines.append(
                f"| {name} | {mode} | {row['median_s']:.3f} | {row['mean_s']:.3f} | {row['forwards']:.1f} "
                f"| {row['median_vs_before']:.2f}x | {metrics} | {'yes' if row['not_worse'] else 'no'} |"
            )
    lines.append(f"\n{result['model']}, n = {result['n']}, median after / before = {result['median_ratio']:.2f}x")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100, help="world edit cases (the model answers them before)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="gpt2-world", help="a reference model in eval/world/models")
    parser.add_argument("--hparam", action="append", default=[], help="KEY=VALUE override of the after setting")
    parser.add_argument(
        "--variant", action="append", default=[], help="NAME:KEY=VALUE,KEY=VALUE: one more setting to compare"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    variants = {}
    for text in args.variant:
        name, _, rest = text.partition(":")
        variants[name] = dict(_parse_hparam(h) for h in rest.split(",") if h)
    result = run(args.n, args.seed, dict(_parse_hparam(h) for h in args.hparam), variants, args.model)
    sys.stdout.write((json.dumps(result) if args.json else table(result)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
