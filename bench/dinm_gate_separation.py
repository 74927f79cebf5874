"""How well a gate statistic tells harmful rows from world text after a plain DINM edit (issue 19).

For each of the first ``--dev`` dev cases (train requests in train attacks, none of the 54 bench cases) on a
vulnerable variant: make the plain DINM edit (not applied), score every position of (a) the case's DG inputs,
(b) the case's own adversarial input, (c) the dev world probes and (d) the gate's calibration texts (800 of
the preserved world texts, as the editor picks them) with the scale-free score ``||a Dᵀ|| / ||a||``, and
summarise three row statistics — the row's highest score, its mean, the mean of its top 3 — relative to the
calibration texts' highest value of the same statistic: the 10% and 50% quantiles, and the share of rows
above 1.0 and above 0.8 of it.

Example:
    PYTHONPATH=. .venv/bin/python bench/dinm_gate_separation.py --model llama-world-unsafe --dev 9
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2-world-unsafe", help="a model under eval/world/models")
    parser.add_argument("--dev", type=int, default=9, help="the first N dev cases (default 9)")
    parser.add_argument("--texts", type=int, default=800, help="calibration texts (default 800, as the editor)")
    args = parser.parse_args()

    import torch

    from eval.world import load_world
    from eval.world._check import build_probes
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from eval.world.safety import benign_prompts, dev_cases, dev_known_probes, load_safety_slice, world_stats
    from eval.world.safety._bench import _case_inputs, detox_request
    from tools.edit import WeightDelta, get_editor
    from tools.edit._dinm_gate import gate_scores, row_statistic
    from tools.edit._hooks import TraceDict
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    lm = HFLanguageModel.load(MODELS_DIR / args.model, device="cpu")
    world = load_world(DATA_DIR)
    bench = [p.prompt for p in build_probes(world, lm.prompt_format, limit=25) if p.metric == "known_train"]
    kl_inputs = benign_prompts(world, lm, 48, avoid=bench)
    known = [p.prompt for p in dev_known_probes(world, lm, avoid=bench + kl_inputs)]
    preserved = world_stats(world, lm, bench)["stats_corpus"]
    calib = [preserved[int(i * len(preserved) / args.texts)] for i in range(args.texts)]
    editor = get_editor("dinm", corpus=kl_inputs, gate=0.0)  # the plain edit, scored as the gate would

    def rows(texts: list[str], path: str, change: Any) -> Any:
        out = []
        for at in range(0, len(texts), 32):
            batch = lm.tokenizer(texts[at : at + 32], return_tensors="pt", padding=True, padding_side="right")
            with torch.no_grad(), TraceDict(lm.model, [path], retain_input=True) as traces:
                lm.model(**batch)
            keys = traces[path].input
            assert keys is not None  # the hook ran
            _, score = gate_scores(keys, change)
            mask = batch["attention_mask"].bool()
            mean = (score * mask).sum(1) / mask.sum(1)
            highest = score.masked_fill(~mask, float("-inf")).max(1).values
            out.append(torch.stack([highest, mean, row_statistic(score, mask, 3)], 1))
        return torch.cat(out)

    groups: dict[str, list[Any]] = {"dg_inputs": [], "adversarial": [], "world_probes": [], "calibration": []}
    for case in dev_cases(load_safety_slice())[: args.dev]:
        delta = editor.compute(lm, [detox_request(lm, case)])
        assert isinstance(delta, WeightDelta)  # the plain edit (no gate)
        (name,) = delta.updates
        path = name.removesuffix(".weight")
        module = dict(lm.model.named_modules())[path]
        dense = delta.dense(name).float()
        change = dense.T if type(module).__name__ == "Conv1D" else dense  # (out, in), as linear_weight
        inputs = _case_inputs(lm, case)
        calibration = rows(calib, path, change)
        top = calibration.max(0).values
        dg = [t for m in ("dg_onlyq", "dg_otherq", "dg_othera", "dg_otheraq") for t in inputs[m]]
        for group, texts in (("dg_inputs", dg), ("adversarial", inputs["ds"]), ("world_probes", known)):
            groups[group].append(rows(texts, path, change) / top)
        groups["calibration"].append(calibration / top)
    names = ("max", "mean", "top3_mean")
    for group, parts in groups.items():
        r = torch.cat(parts)
        line = {"model": args.model, "rows": group, "n": int(r.shape[0])}
        for i, stat in enumerate(names):
            col = r[:, i]
            line[stat] = {
                "q10": round(float(col.quantile(0.1)), 3),
                "q50": round(float(col.quantile(0.5)), 3),
                "above_1.0": round(float((col > 1).float().mean()), 3),
                "above_0.8": round(float((col > 0.8).float().mean()), 3),
            }
        sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
