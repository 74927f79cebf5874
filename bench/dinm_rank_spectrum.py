"""How low-rank is DINM's dense update? (issue 19): its singular spectrum, and the safe response kept by its
top-r truncation, on the dev cases (none of the 54). One JSON line per case, then a summary line.

For each dev case: the dense DINM update (defaults, KL inputs as the bench's dev mode), the share of its
squared Frobenius norm in its top 1 / 2 / 4 / 8 singular directions, and the safe response's NLL given the
adversarial input unedited, after the dense update and after its best rank-r approximation.

Example:
    PYTHONPATH=. nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/python bench/dinm_rank_spectrum.py \\
        --model gpt2-world-unsafe --dev 9
"""

from __future__ import annotations

import argparse
import json
import sys

RANKS = (1, 2, 4, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt2-world-unsafe", help="a model under eval/world/models")
    parser.add_argument("--dev", type=int, default=9, help="the first N dev cases")
    args = parser.parse_args()

    import torch

    from eval.world import load_world
    from eval.world._check import build_probes
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from eval.world.safety import benign_prompts, detox_request, dev_cases, load_safety_slice
    from tools.edit import WeightDelta, get_editor
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    lm = HFLanguageModel.load(MODELS_DIR / args.model, device="cpu")
    world = load_world(DATA_DIR)
    bench = [p.prompt for p in build_probes(world, lm.prompt_format, limit=25) if p.metric == "known_train"]
    editor = get_editor("dinm", corpus=benign_prompts(world, lm, 48, avoid=bench), gate=0.0)  # the plain edit
    params = dict(lm.model.named_parameters())

    def safe_nll(request: object) -> float:
        return -lm.score([request.prompt], [" " + request.target_new])[0].mean_logprob  # type: ignore[attr-defined]

    rows: list[dict[str, float]] = []
    for case in dev_cases(load_safety_slice())[: args.dev]:
        request = detox_request(lm, case)
        delta = editor.compute(lm, [request])
        assert isinstance(delta, WeightDelta)
        ((name, update),) = delta.updates.items()
        assert isinstance(update, torch.Tensor)
        dense = update.float()
        u, s, vh = torch.linalg.svd(dense, full_matrices=False)
        energy = torch.cumsum(s**2, 0) / (s**2).sum()
        row = {"nll_unedited": round(safe_nll(request), 3)}
        original = params[name].detach().clone()
        with torch.no_grad():
            for r in (0, *RANKS):
                approx = dense if r == 0 else (u[:, :r] * s[:r]) @ vh[:r]
                params[name].copy_(original + approx.to(original.dtype))
                row["nll_dense" if r == 0 else f"nll_rank{r}"] = round(safe_nll(request), 3)
            params[name].copy_(original)
        row.update({f"energy_top{r}": round(float(energy[r - 1]), 3) for r in RANKS})
        rows.append(row)
        sys.stdout.write(json.dumps({"case": case.id, **row}) + "\n")
        sys.stdout.flush()
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 3) for k in rows[0]}
    sys.stdout.write(json.dumps({"model": args.model, "cases": len(rows), "mean": mean}) + "\n")


if __name__ == "__main__":
    main()
