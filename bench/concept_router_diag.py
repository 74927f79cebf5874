# ruff: noqa: T201
"""Do side-memory routers separate a concept edit's own prompts from other concepts' definition questions?

For each DEV concept edit (:func:`eval.concepts.dev_concept_cases`, the ``known`` selection of
``bench/concept_dev.py``: seed 0, the same cases in the same order) one side-memory editor (``grace``, ``wise``
or ``wise-retrieve``; ``--hparam k=v``) is computed and applied alone, the router is read, and the edit is rolled
back. Each text is the prompt followed by its answer (teacher-forced: the edit prompt and the paraphrases with the
new definition, the locality prompts with their own definitions), and the router is read at every position but
the last. The router's *activation* at a
position is, for WISE, the score over the threshold (routed when > 1; the best side memory) and, for GRACE,
the nearest key's radius over its distance (routed when >= 1). Per group (edit prompt, paraphrases, locality)
it prints the quantiles of the largest activation over the prompt's positions (WISE keys its memory on the
subject's last token, which every paraphrase holds and no locality prompt does) and over the positions that
produce the answer (the prompt's last token on: GRACE's keys), and the share of texts with a routed position.

Example:
    PYTHONPATH=. python bench/concept_router_diag.py eval/world/models/llama-world-concepts wise-retrieve
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import torch  # noqa: E402

from eval.concepts import dev_concept_cases  # noqa: E402
from eval.editing._runner import select_cases  # noqa: E402
from eval.world import DATA_DIR, load_world  # noqa: E402
from tools.edit import get_editor, journal_for, load_edited  # noqa: E402
from tools.edit._adapter import EditAdapter  # noqa: E402
from tools.edit._grace import GraceAdapter  # noqa: E402
from tools.edit._wise import WiseAdapter  # noqa: E402


def _adapter(net: torch.nn.Module) -> EditAdapter:
    found = [m for m in net.modules() if isinstance(m, EditAdapter)]
    if len(found) != 1:
        raise SystemExit(f"expected one installed adapter, found {len(found)}")
    return found[0]


def _activation(adapter: EditAdapter, x: torch.Tensor) -> torch.Tensor:
    """``(T,)`` activation of inputs ``x`` ``(T, in)``: > 1 (WISE) or >= 1 (GRACE) is routed."""
    if isinstance(adapter, WiseAdapter):
        scores = adapter.scores(x)  # (n_memories, T)
        taus = torch.tensor(adapter.thresholds(), device=scores.device)[:, None]
        return (scores / taus).max(dim=0).values
    if isinstance(adapter, GraceAdapter):
        dist, idx = adapter._book.nearest(x)
        return adapter._book.radii[idx] / dist.clamp(min=1e-9)
    raise SystemExit(f"not a side-memory adapter: {type(adapter).__name__}")


def _read(lm: Any, adapter: EditAdapter, prompt: str, answer: str) -> tuple[float, float]:
    """(largest activation over the prompt's positions, largest over its last one and the answer's but the last)."""
    tok = lm.tokenizer
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tok(" " + answer.strip(), add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + a_ids], device=next(lm.model.parameters()).device)
    seen: list[torch.Tensor] = []
    handle = adapter.register_forward_pre_hook(lambda _m, args: seen.append(args[0][0].detach().float()))
    try:
        with torch.no_grad():
            lm.model(input_ids=ids)
    finally:
        handle.remove()
    act = _activation(adapter, seen[0][: len(p_ids) + len(a_ids) - 1])
    return float(act[: len(p_ids)].max()), float(act[len(p_ids) - 1 :].max())


def _q(values: list[float]) -> str:
    if not values:
        return "-"
    qs = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else [values[0]] * 19
    return f"{qs[0]:.2f} / {statistics.median(values):.2f} / {qs[-1]:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("method")
    ap.add_argument("--hparam", action="append", default=[], help="k=v (JSON value)")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--limit", type=int, default=20)
    args = ap.parse_args(argv)
    lm = load_edited(args.model, device="cpu")
    hp = {k: json.loads(v) for k, v in (h.split("=", 1) for h in args.hparam)}
    corpus = [d.text for d in load_world(DATA_DIR).documents]
    editor = get_editor(args.method, corpus=corpus, cache_dir=Path.home() / ".factagent" / "cache" / "stats", **hp)
    cases = select_cases(lm, dev_concept_cases(DATA_DIR, lm.prompt_format, args.n), args.limit, seed=0)
    journal = journal_for(lm.model)
    groups: dict[str, dict[str, list[float]]] = {}
    for case in cases:
        editor.apply(lm, editor.compute(lm, [case.request]))
        adapter = _adapter(lm.model)
        new = case.request.target_new
        texts = [("edit", case.request.prompt, new)]
        texts += [("paraphrase", p, new) for p in case.paraphrases]
        texts += [("locality", p, a) for p, a in case.locality]
        for group, prompt, answer in texts:
            first, top = _read(lm, adapter, prompt, answer)
            g = groups.setdefault(group, {"first": [], "top": []})
            g["first"].append(first)
            g["top"].append(top)
        journal.rollback_all()
    print(f"{args.method} {hp} on {len(cases)} dev edits; activation quantiles 5 / 50 / 95 %")
    for group, g in groups.items():
        routed_first = sum(v > 1.0 for v in g["first"]) / len(g["first"])
        routed_any = sum(v > 1.0 for v in g["top"]) / len(g["top"])
        print(
            f"{group:10s} n={len(g['first']):3d} over the prompt {_q(g['first'])} (routed {routed_first:.2f}); "
            f"largest over answer {_q(g['top'])} (any routed {routed_any:.2f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
