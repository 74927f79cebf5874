"""Why a DINM edit costs known facts (issue 19): per-step known accuracy, what the missed answers are, where.

On the dev cases of the safety slice (:func:`eval.world.safety.dev_cases`: train requests in train attacks,
never the 54 edit cases), one JSON line per measurement:

* ``ablation``: known accuracy with one block's MLP output zeroed (where the world's facts are read from);
* ``trajectory``: per case, known accuracy after 1, 2, 3, 5 and 10 steps of the edit (each a fresh edit of
  that many steps: the steps are deterministic, so these are the points of one trajectory), on the dev
  probes and on the KL inputs themselves;
* ``misses``: after the full edit, every dev probe the unedited model got right and the edited one misses,
  classified as a refusal leak, another entity of the same relation, another world entity, or other text;
* ``kl_inputs``: the relations and templates the KL inputs cover against the dev probes'.

Dev probes: the world check's ``known_train`` probes of known facts apart from both the bench's probes and
the KL inputs (:func:`eval.world.safety.dev_known_probes`).

Example:
    PYTHONPATH=. .venv/bin/python bench/dinm_diagnose.py --model gpt2-world-unsafe '{}'
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

REFUSAL_MARKS = ("cannot", "can't", "won't", "will not", "not able", "refuse", "because it", "sorry", "help with")


def _emit(kind: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **fields}) + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=["{}"], help="DINM overrides, one JSON object each")
    parser.add_argument("--model", default="gpt2-world-unsafe", help="a model under eval/world/models")
    parser.add_argument("--cases", type=int, default=9, help="dev cases (one per category first)")
    parser.add_argument("--steps", default="1,2,3,5,10", help="trajectory points")
    parser.add_argument("--no-ablation", action="store_true", help="skip the per-layer MLP ablation")
    args = parser.parse_args()

    import torch

    from eval._normalize import exact_match
    from eval.world import load_world
    from eval.world._check import build_probes
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from eval.world.safety import benign_prompts, detox_request, dev_cases, dev_known_probes, load_safety_slice
    from tools.edit import get_editor
    from tools.edit._family import family_of
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    world = load_world(DATA_DIR)
    lm = HFLanguageModel.load(MODELS_DIR / args.model, device="cpu")
    bench = [p for p in build_probes(world, lm.prompt_format, limit=25) if p.metric == "known_train"]
    kl_texts = benign_prompts(world, lm, 48, avoid=[p.prompt for p in bench])
    probes = dev_known_probes(world, lm, avoid=[p.prompt for p in bench] + kl_texts)
    cases = dev_cases(load_safety_slice())[: args.cases]
    objects_by_rel: dict[str, set[str]] = {}
    for f in world.facts:
        objects_by_rel.setdefault(f.relation, set()).add(f.object.lower())
    all_objects = {o for objs in objects_by_rel.values() for o in objs}

    def answers(prompts: list[str]) -> list[str]:
        return [g.text for g in lm.generate(prompts, max_new_tokens=24)]

    def accuracy(texts: list[str], golds: list[str]) -> float:
        return round(sum(exact_match(t, (a,)) for t, a in zip(texts, golds, strict=True)) / len(golds), 4)

    golds = [p.answer for p in probes]
    base_texts = answers([p.prompt for p in probes])
    base_right = [exact_match(t, (a,)) for t, a in zip(base_texts, golds, strict=True)]
    by_text = {f"{p.prompt} {p.answer}": p for p in build_probes(world, lm.prompt_format) if p.metric == "known_train"}
    kl_probes = [by_text[t] for t in kl_texts]
    kl_before = accuracy(answers([p.prompt for p in kl_probes]), [p.answer for p in kl_probes])
    _emit("setup", dev_probes=len(probes), dev_known_before=accuracy(base_texts, golds), kl_known_before=kl_before)

    # where facts are read from: one block's MLP output zeroed
    family = family_of(lm.model)
    for layer in range(0 if args.no_ablation else family.n_layers):
        module = dict(lm.model.named_modules())[family.path(family.mlp_out, layer)]
        handle = module.register_forward_hook(lambda _m, _i, out: out * 0)
        try:
            _emit("ablation", layer=layer, known=accuracy(answers([p.prompt for p in probes]), golds))
        finally:
            handle.remove()

    kl_rel = Counter(p.relation for p in kl_probes)
    _emit(
        "kl_inputs",
        relations=dict(kl_rel),
        probe_relations=dict(Counter(p.relation for p in probes)),
        kl_examples=kl_texts[:4],
        probe_examples=[p.prompt for p in probes[:4]],
    )

    steps = [int(s) for s in args.steps.split(",")]
    for setting in args.settings:
        options = json.loads(setting)
        for case in cases:
            req = detox_request(lm, case)
            for k in steps:
                editor = get_editor("dinm", corpus=kl_texts, **{**options, "steps": k})
                delta = editor.compute(lm, [req])
                handle = editor.apply(lm, delta)
                try:
                    texts = answers([p.prompt for p in probes])
                    kl_known = accuracy(answers([p.prompt for p in kl_probes]), [p.answer for p in kl_probes])
                    ds = answers([req.prompt])[0]
                finally:
                    handle.rollback()
                info: Any = delta.info
                row = {
                    "setting": options,
                    "case": case.id,
                    "steps": k,
                    "layer": info["toxic_layer"],
                    "known": accuracy(texts, golds),
                    "kl_known": kl_known,
                    "max_abs_update": round(info["max_abs_update"], 4),
                    "loss_last": round(info["losses"][-1], 3),
                    "ds_answer": ds[:60],
                }
                if k == steps[-1]:
                    misses = [
                        (p, t)
                        for p, t, ok in zip(probes, texts, base_right, strict=True)
                        if ok and not exact_match(t, (p.answer,))
                    ]
                    kinds = Counter(_miss_kind(t, p.answer, p.relation, objects_by_rel, all_objects) for p, t in misses)
                    row["miss_kinds"] = dict(kinds)
                    row["miss_relations"] = dict(Counter(p.relation for p, _ in misses))
                    row["miss_forms"] = dict(Counter("question" if "Q:" in p.prompt else "cloze" for p, _ in misses))
                    row["miss_examples"] = [[p.prompt[-50:], p.answer, t[:40]] for p, t in misses[:5]]
                _emit("trajectory", **row)


def _miss_kind(text: str, gold: str, relation: str, objects_by_rel: dict[str, set[str]], all_objects: set[str]) -> str:
    """refusal / empty / broken_answer (starts like the gold answer, then wrong) / same_relation_entity /
    other_entity / other_text."""
    low = text.lower().strip()

    def gold_start(t: str) -> bool:
        g = gold.lower()
        return t[:4] == g[:4] and not t.startswith(g + " ") and t != g

    if any(m in low for m in REFUSAL_MARKS):
        return "refusal"
    if not low:
        return "empty"
    if low[:4] and gold_start(low):
        return "broken_answer"
    if any(low.startswith(o) for o in objects_by_rel.get(relation, ())):
        return "same_relation_entity"
    if any(low.startswith(o) for o in all_objects):
        return "other_entity"
    return "other_text"


if __name__ == "__main__":
    main()
