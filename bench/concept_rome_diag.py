# ruff: noqa: T201
"""Why ROME's greedy locality falls on concept edits: which locality prompts flip, and how the update reads them.

For each selected world concept edit (``concept-bench``'s selection: seed 0, ``known``, the same cases in the
same order) one single-layer editor (``rome`` by default; ``--method``, ``--hparam k=v``) is computed, applied,
probed and rolled back. For each of the case's locality prompts (another concept's ``What is a <label>?``) it
records whether the greedy answer flipped (the bench's criterion: the normalised greedy answer changed), what
the after-answer looks like (still the true definition up to its end? takes the new target's words?), how the
locality concept relates to the edited one (same parent = sibling, same root, distant) and to the source of
the new definition, whether the two labels share a word, and the edited layer's keys: the cosine of the
locality prompt's subject key (its label's last token) with the edited key (the bare cloze's), and the update's
response ``right · k`` (1 on the edited key) at that token and over every position of prompt and answer.
Prints a summary grouped by those attributes; ``--out`` writes one JSON line per locality prompt.

Example:
    PYTHONPATH=. python bench/concept_rome_diag.py eval/world/models/llama-world-concepts --out diag.jsonl
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

from eval._normalize import normalize_answer  # noqa: E402
from eval.concepts import (  # noqa: E402
    ConceptCase,
    dev_concept_cases,
    preserved_definition_prompts,
    uses_preserved_prompts,
    world_concept_cases,
)
from eval.editing._metrics import LMProber, agreement, answer_matches, measure_after, measure_before  # noqa: E402
from eval.editing._runner import select_cases  # noqa: E402
from eval.world import DATA_DIR, load_world  # noqa: E402
from tools.edit import LowRank, WeightDelta, get_editor, journal_for, load_edited  # noqa: E402
from tools.edit._family import get_module  # noqa: E402
from tools.edit._keys import subject_keys  # noqa: E402
from tools.edit._request import EditRequest  # noqa: E402


def _inputs_at_all_positions(lm: Any, path: str, text: str) -> torch.Tensor:
    """The input of ``path`` at every token of ``text``: ``(T, in)``."""
    module = get_module(lm.model, path)
    seen: list[torch.Tensor] = []
    handle = module.register_forward_pre_hook(lambda _m, args: seen.append(args[0][0].detach().double()))
    try:
        ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            lm.model(input_ids=ids.to(next(lm.model.parameters()).device))
    finally:
        handle.remove()
    return seen[0]


def _relation(a: dict[str, Any], b: dict[str, Any], root: dict[str, str]) -> str:
    if a["label"] == b["label"]:
        return "same"
    if a.get("parent") and a.get("parent") == b.get("parent"):
        return "sibling"
    if a.get("parent") == b["id"] or b.get("parent") == a["id"]:
        return "parent/child"
    return "same-root" if root[a["id"]] == root[b["id"]] else "distant"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--method", default="rome")
    ap.add_argument("--hparam", action="append", default=[], help="k=v (JSON value)")
    ap.add_argument("--limit", type=int, default=117)
    ap.add_argument("--dev", type=int, default=0, help="use this many dev edits (dev_concept_cases) instead")
    ap.add_argument("--out", type=Path, help="JSON lines, appended after each case")
    ap.add_argument("--summarize", type=Path, help="only print the summary of an --out file")
    args = ap.parse_args(argv)
    if args.summarize:
        _summary([json.loads(x) for x in args.summarize.read_text().splitlines() if x.strip()])
        return 0
    if args.out:
        args.out.write_text("")

    torch.manual_seed(0)
    lm = load_edited(args.model, device="cpu")
    fmt = lm.prompt_format
    cases = dev_concept_cases(DATA_DIR, fmt, args.dev) if args.dev else world_concept_cases(DATA_DIR, fmt)
    chosen: list[ConceptCase] = select_cases(lm, cases, min(args.limit, len(cases)), seed=0, select="known")  # type: ignore[assignment]
    concepts = {
        json.loads(x)["label"]: json.loads(x) for x in (DATA_DIR / "concepts.jsonl").read_text().splitlines() if x
    }
    by_def = {c["definition"]: c for c in concepts.values()}
    by_id = {c["id"]: c for c in concepts.values()}

    def root_of(cid: str) -> str:
        while by_id[cid].get("parent"):
            cid = by_id[cid]["parent"]
        return cid

    root = {cid: root_of(cid) for cid in by_id}
    hp = {k: json.loads(v) for k, v in (h.split("=", 1) for h in args.hparam)}
    if uses_preserved_prompts(args.method, hp):  # as concept-bench and bench/concept_dev.py give them
        hp["preserve_prompts"] = preserved_definition_prompts(
            DATA_DIR, exclude={p for c in chosen for p, _ in c.locality}, prompt_format=fmt
        )
    corpus = [d.text for d in load_world(DATA_DIR).documents]
    editor = get_editor(args.method, corpus=corpus, cache_dir=Path.home() / ".factagent" / "cache" / "stats", **hp)
    prober = LMProber(lm, answer_tokens=32)
    baseline = measure_before(prober, chosen)
    journal = journal_for(lm.model)
    records: list[dict[str, Any]] = []
    for case, before in zip(chosen, baseline, strict=True):
        req = case.request
        delta = editor.compute(lm, [req])
        assert isinstance(delta, WeightDelta)  # a weight editor (ROME, single-layer MEMIT / AlphaEdit)
        ((name, update),) = delta.updates.items()
        assert isinstance(update, LowRank)
        path = name.removesuffix(".weight")
        conv = type(get_module(lm.model, path)).__name__ == "Conv1D"  # GPT-2 stores (in, out)
        right = (update.left[:, 0] if conv else update.right[0]).double()  # (in,): 1 on the edited bare key
        k_edit = subject_keys(lm, path, [req], ("{}",))[0, 0].double()
        # the keys the new definition is read with: every token of the target after the edit prompt
        full = _inputs_at_all_positions(lm, path, f"{req.prompt} {req.target_new}")
        n_prompt = len(lm.tokenizer(req.prompt, add_special_tokens=False)["input_ids"])
        k_newdef = full[n_prompt:].mean(dim=0)
        edited = concepts[req.subject]
        source = by_def.get(req.target_new)
        editor.apply(lm, delta)
        after = measure_after(prober, [case])[0]
        journal.rollback_all()
        rel = float(answer_matches(after.rewrite.text, req.target_new))
        for probe, pre, post in zip(case.locality, before.locality, after.locality, strict=True):
            other = by_def[probe[1]]
            loc_req = EditRequest(probe[0], other["label"], probe[1])
            k_loc = subject_keys(lm, path, [loc_req], ("{}",))[0, 0].double()
            every = _inputs_at_all_positions(lm, path, f"{probe[0]} {probe[1]}")
            cos_edit_all = torch.nn.functional.cosine_similarity(every, k_edit.unsqueeze(0), dim=1)
            cos_newdef_all = torch.nn.functional.cosine_similarity(every, k_newdef.unsqueeze(0), dim=1)
            shared = set(other["label"].lower().split()) & set(edited["label"].lower().split())
            tgt_words = normalize_answer(req.target_new).split()
            post_words = normalize_answer(post.text).split()
            true_words = normalize_answer(probe[1]).split()
            records.append(
                {
                    "case": case.id,
                    "kind": case.kind,
                    "edited": edited["label"],
                    "locality_concept": other["label"],
                    "rel_edited": _relation(other, edited, root),
                    "rel_source": _relation(other, source, root) if source else "?",
                    "shares_word": bool(shared),
                    "flipped": agreement(pre, post, "generation") == 0.0,
                    "tf_agreement": agreement(pre, post, "teacher_forced"),
                    "after_still_true": answer_matches(post.text, probe[1]),
                    "before_true": answer_matches(pre.text, probe[1]),
                    "after_is_target": answer_matches(post.text, req.target_new),
                    "after_shares_target_prefix": post_words[:4] == tgt_words[:4] and true_words[:4] != tgt_words[:4],
                    "key_cos": float(torch.nn.functional.cosine_similarity(k_loc, k_edit, dim=0)),
                    "key_cos_newdef": float(torch.nn.functional.cosine_similarity(k_loc, k_newdef, dim=0)),
                    "max_cos_edit": float(cos_edit_all.max()),
                    "max_cos_newdef": float(cos_newdef_all.max()),
                    "loc_is_source": source is not None and other["label"] == source["label"],
                    "after_kind": _after_kind(post.text, probe[1], req.target_new, edited, by_def),
                    "response_subject": float(right @ k_loc),
                    "response_max": float((every @ right).abs().max()),
                    "response_max_token": lm.tokenizer.convert_ids_to_tokens(
                        lm.tokenizer(f"{probe[0]} {probe[1]}", add_special_tokens=False)["input_ids"]
                    )[int((every @ right).abs().argmax())],
                    "response_rms": float((every @ right).pow(2).mean().sqrt()),
                    "before": pre.text,
                    "after": post.text,
                    "reliable": rel,
                    "layer": path,
                    "delta_norm": float(delta.info.get("delta_norm", float("nan"))),
                    "fit_nll": float(delta.info.get("nll", float("nan"))),
                }
            )
        mine = records[-len(case.locality) :]
        norm, nll = delta.info.get("delta_norm", float("nan")), delta.info.get("nll", float("nan"))
        flips = sum(r["flipped"] for r in mine)
        print(f"{case.id} rel={rel:.0f} flips={flips} delta_norm={norm:.1f} nll={nll:.4f}", file=sys.stderr)
        if args.out:
            with args.out.open("a") as fh:
                fh.write("".join(json.dumps(r) + "\n" for r in mine))
    _summary(records)
    return 0


def _after_kind(text: str, truth: str, target: str, edited: dict[str, Any], by_def: dict[str, dict[str, Any]]) -> str:
    """What a locality answer after the edit is: its own definition, the new target (the source concept's
    definition), the edited concept's old definition, another concept's definition, or a fragment."""
    if answer_matches(text, truth):
        return "own"
    if answer_matches(text, target):
        return "new_target"
    if answer_matches(text, str(edited["definition"])):
        return "edited_old"
    if any(answer_matches(text, d) for d in by_def):
        return "other_definition"
    return "fragment"


def _summary(records: list[dict[str, Any]]) -> None:
    def line(name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        flips = [r for r in rows if r["flipped"]]
        med = statistics.median
        print(
            f"{name:<34} n={len(rows):>4} flip={len(flips) / len(rows):.3f} "
            f"cos={med(r['key_cos'] for r in rows):+.3f} resp_subj={med(abs(r['response_subject']) for r in rows):.3f} "
            f"resp_max={med(r['response_max'] for r in rows):.3f} resp_rms={med(r['response_rms'] for r in rows):.3f}"
            f" cos_newdef={med(r.get('key_cos_newdef', 0.0) for r in rows):+.3f}"
            f" maxcos_edit={med(r.get('max_cos_edit', 0.0) for r in rows):+.3f}"
            f" maxcos_newdef={med(r.get('max_cos_newdef', 0.0) for r in rows):+.3f}"
        )

    line("all", records)
    line("flipped", [r for r in records if r["flipped"]])
    line("kept", [r for r in records if not r["flipped"]])
    for key in ("rel_edited", "rel_source", "shares_word", "kind", "loc_is_source"):
        for value in sorted({str(r[key]) for r in records}):
            line(f"{key}={value}", [r for r in records if str(r[key]) == value])
    flips = [r for r in records if r["flipped"]]
    if flips:
        n = len(flips)
        print(
            f"of {n} flips: still the true definition {sum(r['after_still_true'] for r in flips) / n:.3f}, "
            f"true before {sum(r['before_true'] for r in flips) / n:.3f}, the new target "
            f"{sum(r['after_is_target'] for r in flips) / n:.3f}, the target's first words "
            f"{sum(r['after_shares_target_prefix'] for r in flips) / n:.3f}"
        )
    for kind in sorted({str(r["kind"]) for r in records}):
        mine = [r for r in flips if str(r["kind"]) == kind]
        counts: dict[str, int] = {}
        for r in mine:
            counts[str(r.get("after_kind"))] = counts.get(str(r.get("after_kind")), 0) + 1
        print(f"flips of kind={kind}: {len(mine)} of {sum(str(r['kind']) == kind for r in records)}, after: {counts}")
    cut = sorted(r["response_max"] for r in records)
    for q in (0.25, 0.5, 0.75):
        thr = cut[int(q * (len(cut) - 1))]
        hi = [r for r in records if r["response_max"] > thr]
        lo = [r for r in records if r["response_max"] <= thr]
        print(
            f"response_max > q{q:.2f} ({thr:.3f}): flip {sum(r['flipped'] for r in hi) / max(len(hi), 1):.3f} "
            f"(<=: {sum(r['flipped'] for r in lo) / max(len(lo), 1):.3f})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
