# ruff: noqa: T201
"""Router diagnosis of WISE on a reference model: edit sequentially, score, then read the installed side memory.

Prints greedy / teacher-forced reliability, generalization and locality, seconds per edit, the router's scores
(edit prompts at the subject's last token; the highest position of each neighbourhood prompt; every position of
corpus sentences), the share routed, the merged memory's effective rank, the mask overlap of shards 0 and 1 and
the merge interference ``||(TIES - sum) k|| / ||sum k||`` at the edit keys (figures in ``tools/edit/_wise.py``).

Example:
    PYTHONPATH=. python bench/wise_diag.py gpt2 20 shard_size=5
    PYTHONPATH=. python bench/wise_diag.py gpt2 20 shard_size=5 mask_ratio=0.2 act_ratio=0.85 normalize_scores=true
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def _quantiles(values: Any) -> str:
    return " / ".join(f"{float(values.quantile(p)):.2f}" for p in (0.05, 0.5, 0.95))


def main(argv: list[str]) -> int:
    """``MODEL T [KEY=JSON ...]``: hyperparameter overrides (``method=wise-retrieve`` picks the variant)."""
    import torch

    from eval.editing import select_cases, world_edit_cases
    from eval.editing._metrics import LMProber, measure_before
    from eval.editing._runner import _rows, without_edited_neighbours
    from eval.world import load_world
    from eval.world._lifelong import lifelong_pool
    from eval.world._pipeline import ALL_MODEL_NAMES, DATA_DIR, MODELS_DIR
    from tools.edit import get_editor
    from tools.edit._hooks import Trace
    from tools.edit._wise import WiseAdapter
    from tools.lm._hf import HFLanguageModel

    torch.set_num_threads(1)
    model, t = argv[0], int(argv[1])
    over: dict[str, Any] = {}
    for arg in argv[2:]:
        key, _, raw = arg.partition("=")
        value = json.loads(raw)
        over[key] = tuple(value) if isinstance(value, list) else value
    method = str(over.pop("method", "wise"))
    world = lifelong_pool(load_world(DATA_DIR), DATA_DIR)
    lm = HFLanguageModel.load(MODELS_DIR / ALL_MODEL_NAMES[model], device="cpu")
    cases = without_edited_neighbours(select_cases(lm, world_edit_cases(world, lm.prompt_format), t, seed=0))
    before = measure_before(LMProber(lm), cases)
    cache = Path(os.environ.get("FACTAGENT_CACHE", "/tmp/factagent-cache"))
    editor = get_editor(method, corpus=[d.text for d in world.documents], cache_dir=cache, **over)
    start, cpu = time.perf_counter(), time.process_time()
    for case in cases:
        editor.apply(lm, editor.compute(lm, [case.request]))
    per_edit = (time.perf_counter() - start) / t
    cpu_per_edit = (time.process_time() - cpu) / t
    common = {"method": method, "model": model, "T": t, "n": t, "seconds_per_edit": per_edit, "T_requested": t}
    common |= {"edit_mode": "sequential", "batch_size": 1, "selection": "known"}
    for row in _rows(lm, cases, before, 24, 8, common):
        print(f"{row['mode']}: rel {row['reliability']:.3f} gen {row['generalization']:.3f} loc {row['locality']:.3f}")
    print(f"s/edit {per_edit:.2f} wall, {cpu_per_edit:.2f} CPU (one thread; wall time grows with the machine's load)")

    adapter = next(m for m in lm.model.modules() if isinstance(m, WiseAdapter))
    path = next(n for n, m in lm.model.named_modules() if m is adapter)

    def inputs(texts: list[str]) -> list[torch.Tensor]:
        out = []
        for text in texts:
            ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
            with Trace(lm.model, path, retain_input=True) as trace:
                lm.model(input_ids=ids)
            assert trace.input is not None
            out.append(trace.input[0].float())
        return out

    keys = torch.stack([adapter._edits[e].keys[0] for e in adapter.edit_ids()])  # the prompts' subject ends
    tau = min(adapter.thresholds())
    s_edit = adapter.scores(keys).max(0).values
    s_neigh = torch.stack(
        [adapter.scores(x).max(0).values.max() for x in inputs([p[0] for c in cases for p in c.locality][:300])]
    )
    s_doc = torch.cat([adapter.scores(x).max(0).values for x in inputs([d.text for d in world.documents[::7]][:300])])
    print(f"thresholds {[round(x, 2) for x in adapter.thresholds()[:5]]} ({len(adapter.thresholds())})")
    print(
        f"score q05/q50/q95: edit prompts {_quantiles(s_edit)} | neighbour prompts (max) {_quantiles(s_neigh)}"
        f" | corpus positions {_quantiles(s_doc)}"
    )
    routed = [float((s > tau).float().mean()) for s in (s_edit, s_neigh, s_doc)]
    print("routed: edit {:.3f} neighbour {:.3f} corpus {:.3f}".format(*routed))
    if not adapter.retrieve:
        memory = adapter._memories[0]
        sv = torch.linalg.svdvals(memory)
        print(f"memory {tuple(memory.shape)} effective rank {float(sv.sum() ** 2 / sv.square().sum()):.1f}")
        shards = adapter.shards()
        if len(shards) > 1:
            m0, m1 = set(adapter.mask(0).tolist()), set(adapter.mask(1).tolist())
            plain = torch.stack([adapter.shard_delta(s) for s in shards]).sum(0)
            err = (keys @ (memory - plain).T).norm(dim=-1) / (keys @ plain.T).norm(dim=-1).clamp(min=1e-6)
            print(
                f"shards {[len(v) for v in shards.values()]} mask overlap 0/1 {len(m0 & m1) / len(m0):.3f}"
                f" merge interference (median) {float(err.median()):.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
