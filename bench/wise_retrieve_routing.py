# ruff: noqa: T201
"""Where WISE-Retrieve's routing goes wrong as memories pile up, and what each threshold rule would give.

Edits the first ``T`` cases of the lifelong pool sequentially with ``wise-retrieve`` (or reloads the side memories
a previous run saved with ``--save``), then, for every scored prompt, reads which memory the router picks at each
position:

- edit prompts and paraphrases: routed to their own memory at some position, to another memory only, or to none;
- locality prompts: routed anywhere (a false positive), and whose memory took them.

Then it re-scores the same memories under other rules (nothing is retrained): ``--cross q`` raises each memory's
threshold to the ``q`` quantile of the scores it gives the other edits' in-scope inputs (``1.0``: their maximum),
never above ``0.95`` of its own prompt's score; ``--corpus q`` to the ``q`` quantile over the positions of every
third world document (``--uncapped``: even above its own prompt's score); ``--calibrate q`` is WISE's own
calibration (``calibrate`` on the stored hardest negatives); ``--sequence`` routes each input to one memory, the one
scoring highest over its positions, as the reference code does; ``--gate c`` re-scores with the editor's
``prev_gate`` option, under each ``--act-ratio`` given (the threshold rule's ratio; the memories do not depend
on it). Figures in the README ("Where WISE-Retrieve's router goes wrong") and
:class:`~tools.edit._wise_settings.WiseRetrieveHyperParams`.

The memories do not depend on the threshold rule (each is trained with the adapter swapped out), so one run's
memories re-scored under another ``act_ratio`` give that setting's figures without editing again. ``--edited``
starts from a saved edited model (an ``edit-table`` checkpoint's ``model-<t>-<done>``) and makes only the edits
left.

Examples:
    PYTHONPATH=. python bench/wise_retrieve_routing.py llama 300 --save /tmp/wr-llama-300.pt --cross 0.9,1.0
    PYTHONPATH=. python bench/wise_retrieve_routing.py gpt2 1000 --save /tmp/wr-gpt2-1000.pt --no-census
        --edited OUT/checkpoints/gpt2__wise-retrieve__T1000/model-0-900 --skip-base --act-ratio 0.9,0.7 --gate 0.3
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("gpt2", "llama", "llama-large"))
    parser.add_argument("T", type=int)
    parser.add_argument("--save", type=Path, help="side memories: reloaded from here if present, else saved here")
    parser.add_argument(
        "--edited",
        type=Path,
        help="start from an edited model directory holding this run's first edits (tools.edit.save_edited; e.g. "
        "an edit-table checkpoint's model-<t>-<done>, whose state.json beside it restores the RNG) and make the "
        "remaining ones, instead of editing from the start",
    )
    parser.add_argument("--cross", default="", help="comma-separated quantiles of the cross-edit calibration")
    parser.add_argument("--calibrate", default="", help="comma-separated quantiles of WISE's own calibration")
    parser.add_argument("--corpus", default="", help="comma-separated quantiles of corpus-position calibration")
    parser.add_argument("--uncapped", action="store_true", help="corpus calibration may pass an edit's own prompt")
    parser.add_argument(
        "--sequence", action="store_true", help="also score the reference code's routing: one memory per input"
    )
    parser.add_argument("--bigram", default="", help="comma-separated cosines: also gate on the previous token's input")
    parser.add_argument("--gate", default="", help="comma-separated cosines of the editor's prev_gate option")
    parser.add_argument(
        "--act-ratio", default="", help="comma-separated act_ratio values, each scored with every --gate cosine"
    )
    parser.add_argument("--no-census", action="store_true", help="skip reading the router at every position")
    parser.add_argument("--skip-base", action="store_true", help="do not re-score the thresholds as trained")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Edit (or reload), print the routing census, then the metrics under each threshold rule."""
    import torch

    from eval.editing import select_cases, world_edit_cases
    from eval.editing._metrics import LMProber, measure_before
    from eval.editing._runner import _rows, without_edited_neighbours
    from eval.world import load_world
    from eval.world._lifelong import lifelong_pool
    from eval.world._pipeline import ALL_MODEL_NAMES, DATA_DIR, MODELS_DIR
    from tools.edit import get_editor
    from tools.edit._family import get_module, set_module
    from tools.edit._hooks import Trace
    from tools.edit._wise import WiseAdapter
    from tools.lm._hf import HFLanguageModel

    args = _parse(argv)
    torch.set_num_threads(1)
    world = lifelong_pool(load_world(DATA_DIR), DATA_DIR)
    lm = HFLanguageModel.load(MODELS_DIR / ALL_MODEL_NAMES[args.model], device="cpu")
    cases = without_edited_neighbours(select_cases(lm, world_edit_cases(world, lm.prompt_format), args.T, seed=0))
    before = measure_before(LMProber(lm), cases)
    done = 0
    if args.save is not None and args.save.is_file():
        saved = torch.load(args.save, weights_only=False)
        base = get_module(lm.model, saved["path"])
        set_module(lm.model, saved["path"], WiseAdapter.restore(base, saved["tensors"], saved["meta"]))
        print(f"reloaded {args.save}")
        done = len(cases)
    elif args.edited is not None:
        lm = _resume(args.edited)
        done = len(next(m for m in lm.model.modules() if isinstance(m, WiseAdapter)).thresholds())
        print(f"{args.edited}: {done} edits made, {len(cases) - done} to go")
    if done < len(cases):
        editor = get_editor("wise-retrieve", corpus=[d.text for d in world.documents])
        start = time.perf_counter()
        for i, case in enumerate(cases[done:], start=done):
            editor.apply(lm, editor.compute(lm, [case.request]))
            if (i + 1) % 50 == 0:
                print(f"{i + 1} edits, {(time.perf_counter() - start) / (i + 1 - done):.2f} s/edit", flush=True)
    adapter = next(m for m in lm.model.modules() if isinstance(m, WiseAdapter))
    path = next(n for n, m in lm.model.named_modules() if m is adapter)
    if args.save is not None and not args.save.is_file():
        tensors, meta = adapter.export()
        torch.save({"path": path, "tensors": tensors, "meta": meta}, args.save)
        print(f"saved {args.save}")
    if len(adapter.thresholds()) != len(cases):
        raise SystemExit(f"expected one memory per edit, got {len(adapter.thresholds())} for {len(cases)}")

    def routes(text: str) -> tuple[list[int], list[str]]:
        """The memory each position goes to (-1: none) and the tokens."""
        ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
        with Trace(lm.model, path, retain_input=True) as trace:
            lm.model(input_ids=ids)
        assert trace.input is not None
        scores = adapter.scores(trace.input[0].float())  # (M, T)
        tau = torch.tensor(adapter.thresholds())[:, None]
        masked = torch.where(scores > tau, scores, torch.full_like(scores, float("-inf")))
        best = masked.max(0)
        chosen = torch.where(torch.isfinite(best.values), best.indices, torch.full_like(best.indices, -1))
        return chosen.tolist(), lm.tokenizer.convert_ids_to_tokens(ids[0])

    census: dict[str, Counter[str]] = {"prompt": Counter(), "paraphrase": Counter(), "locality": Counter()}
    culprits: Counter[int] = Counter()  # memory -> locality prompts it took
    examples: list[str] = []
    for t, case in enumerate([] if args.no_census else cases):
        for kind, texts in (("prompt", [case.request.prompt]), ("paraphrase", list(case.paraphrases))):
            for text in texts:
                chosen, _ = routes(text)
                mems = set(chosen) - {-1}
                census[kind]["own" if t in mems else ("other only" if mems else "none")] += 1
                if t in mems and len(mems) > 1:
                    census[kind]["own and other"] += 1
        for text, _answer in case.locality:
            chosen, tokens = routes(text)
            mems = set(chosen) - {-1}
            census["locality"]["routed" if mems else "clean"] += 1
            culprits.update(mems)
            if mems and len(examples) < 12:
                at = [(tokens[i], cases[m].request.subject) for i, m in enumerate(chosen) if m >= 0]
                examples.append(f"{text!r}: {at[:3]}")
    for kind, counts in census.items() if not args.no_census else []:
        total = sum(v for k, v in counts.items() if k != "own and other")
        print(f"{kind} ({total}): " + ", ".join(f"{k} {v} ({v / total:.3f})" for k, v in sorted(counts.items())))
    top = culprits.most_common(10)
    print(f"memories taking locality prompts: {len(culprits)} of {len(cases)}; the 10 busiest (subject, prompts):")
    print("  " + ", ".join(f"{cases[m].request.subject!r} {n}" for m, n in top))
    print("locality false positives (token, memory's subject):")
    for line in examples:
        print("  " + line)

    def score(label: str) -> None:
        common: dict[str, Any] = {"method": "wise-retrieve", "model": args.model, "T": args.T, "n": args.T}
        common |= {"seconds_per_edit": 0.0, "T_requested": args.T, "edit_mode": "sequential", "batch_size": 1}
        common |= {"selection": "known"}
        start = time.perf_counter()
        rows = _rows(lm, cases, before, 24, 8, common)
        figures = " | ".join(
            f"{r['mode']} {r['reliability']:.3f} / {r['generalization']:.3f} / {r['locality']:.3f}"
            f" (mean {(r['reliability'] + r['generalization'] + r['locality']) / 3:.3f})"
            for r in rows
        )
        print(f"{label}: {figures} [{time.perf_counter() - start:.0f} s]", flush=True)

    trained = adapter.thresholds()
    if not args.skip_base:
        score("as trained")
    keys = [adapter._edits[e].keys for e in adapter.edit_ids()]
    owner = torch.cat([torch.full((k.shape[0],), i) for i, k in enumerate(keys)])
    flat = torch.cat(keys)
    for q in [float(x) for x in args.cross.split(",") if x]:
        raised = []
        for i, (delta, tau) in enumerate(zip(adapter._memories, trained, strict=True)):
            s = adapter._score(flat, delta)
            own, other = s[owner == i], s[owner != i]
            cap = 0.95 * float(own[0])
            bar = float(other.quantile(q)) if other.numel() else 0.0
            raised.append(max(tau, min(bar, cap)))
        adapter._thresholds = raised
        moved = sum(r > t for r, t in zip(raised, trained, strict=True))
        print(f"cross={q}: {moved} of {len(trained)} thresholds raised")
        score(f"cross={q}")
    adapter._thresholds = trained
    corpus_q = [float(x) for x in args.corpus.split(",") if x]
    if corpus_q:
        sample = []  # module inputs at every position of every 3rd world document (none about an edited subject)
        edited = {c.request.subject for c in cases}
        for doc in world.documents[::3]:
            if any(s in doc.text for s in edited):
                continue
            ids = lm.tokenizer(doc.text, return_tensors="pt")["input_ids"]
            with Trace(lm.model, path, retain_input=True) as trace:
                lm.model(input_ids=ids)
            assert trace.input is not None
            sample.append(trace.input[0].float())
        positions = torch.cat(sample)
        print(f"corpus sample: {positions.shape[0]} positions of {len(sample)} documents")
        per_memory = [adapter._score(positions, d) for d in adapter._memories]
        fired = sum(int((s > t).any()) for s, t in zip(per_memory, trained, strict=True))
        print(f"memories firing on some corpus position as trained: {fired} of {len(trained)}")
        for q in corpus_q:
            raised = []
            for i, (s, tau) in enumerate(zip(per_memory, trained, strict=True)):
                bar = float(s.quantile(q)) if q < 1.0 else float(s.max())
                cap = 0.95 * float(adapter._score(adapter._edits[adapter.edit_ids()[i]].keys[:1], adapter._memories[i]))
                raised.append(max(tau, bar if args.uncapped else min(bar, cap)))
            adapter._thresholds = raised
            moved = sum(r > t for r, t in zip(raised, trained, strict=True))
            print(f"corpus={q}: {moved} of {len(trained)} thresholds raised")
            score(f"corpus={q}{' uncapped' if args.uncapped else ''}")
        adapter._thresholds = trained
    if args.sequence:
        held: dict[str, Any] = {"mask": None}

        def keep_mask(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            held["mask"] = kwargs.get("attention_mask")

        hook = lm.model.register_forward_pre_hook(keep_mask, with_kwargs=True)
        position_forward = adapter.forward

        def sequence_forward(x: torch.Tensor) -> torch.Tensor:
            """WISE-Retrieve as the reference code routes: each input (row) goes to the one memory scoring highest
            over its positions, applied where that memory clears its threshold (padding ignored)."""
            out = adapter.base(x)
            b, length, d_in = x.shape
            flat = x.reshape(-1, d_in).float()
            scores = torch.stack([adapter._score(flat, d) for d in adapter._memories]).reshape(-1, b, length)
            above = scores > torch.tensor(adapter.thresholds())[:, None, None]
            mask = held["mask"]
            if mask is not None:
                above &= mask[:, -length:].bool()[None]
            best = torch.where(above, scores, torch.full_like(scores, float("-inf"))).amax(dim=2)  # (M, B)
            top = best.max(0)
            extra = torch.zeros(b, length, out.shape[-1])
            for row in range(b):
                if torch.isfinite(top.values[row]):
                    m = int(top.indices[row])
                    side = x[row].float() @ adapter._memories[m].T
                    extra[row] = torch.where(above[m, row][:, None], side, torch.zeros_like(side))
            return (out.float() + extra).to(out.dtype)

        adapter.forward = sequence_forward  # type: ignore[method-assign]
        score("one memory per input")
        adapter.forward = position_forward  # type: ignore[method-assign]
        hook.remove()
    trained_ratio = adapter.act_ratio
    for ratio in [float(x) for x in args.act_ratio.split(",") if x] or [trained_ratio]:
        adapter.act_ratio = ratio
        for c in [float(x) for x in args.gate.split(",") if x]:
            adapter.prev_gate = c
            adapter._rebuild()
            gated = sum(g is not None for g in adapter._gates)
            score(f"act_ratio={ratio} prev_gate={c} ({gated} of {len(trained)} memories gated)")
    adapter.act_ratio, adapter.prev_gate = trained_ratio, None
    adapter._rebuild()
    for c in [float(x) for x in args.bigram.split(",") if x]:
        _score_bigram(lm, cases, adapter, path, c, score)
    for q in [float(x) for x in args.calibrate.split(",") if x]:
        adapter.calibrate = q
        adapter._rebuild()
        moved = sum(r > t for r, t in zip(adapter.thresholds(), trained, strict=True))
        print(f"calibrate={q}: {moved} of {len(trained)} thresholds raised")
        score(f"calibrate={q}")
    return 0


def _resume(directory: Path) -> Any:
    """The edited model saved in ``directory``, with the RNG states of the checkpoint that saved it (if any)."""
    import json

    from eval.editing._checkpoint import BenchCheckpoint, RunState
    from tools.edit import load_edited

    state = directory.parent / "state.json"
    if state.is_file():
        BenchCheckpoint(directory.parent).restore(RunState(**json.loads(state.read_text())["state"]))
    return load_edited(directory, device="cpu")


def _score_bigram(lm: Any, cases: Any, adapter: Any, path: str, cosine: float, score: Any) -> None:
    """Re-score with a second gate: a position goes to memory ``i`` only if the input one position earlier points
    the way the input before the subject's last token did in edit ``i``'s prompt (cosine above ``cosine``); a
    memory whose subject is one token has no second gate. Decoding steps (one position) route nowhere."""
    import torch
    from torch.nn import functional as nnf

    from tools.edit._hooks import Trace

    prev, single = [], []
    for case in cases:
        prompt, subject = case.request.prompt, case.request.subject
        end = prompt.index(subject) + len(subject)
        with_subject = lm.tokenizer(prompt[:end], return_tensors="pt")["input_ids"]
        before = len(lm.tokenizer(prompt[: prompt.index(subject)].rstrip())["input_ids"])
        with Trace(lm.model, path, retain_input=True) as trace:
            lm.model(input_ids=with_subject)
        assert trace.input is not None
        single.append(with_subject.shape[1] - before < 2)
        prev.append(trace.input[0][-2].float() if with_subject.shape[1] >= 2 else torch.zeros(trace.input[0].shape[-1]))
    prev_keys = nnf.normalize(torch.stack(prev), dim=-1)  # (M, in)
    alone = torch.tensor(single)
    position_forward = adapter.forward

    def bigram_forward(x: torch.Tensor) -> torch.Tensor:
        out = adapter.base(x)
        b, length, d_in = x.shape
        flat = x.reshape(-1, d_in).float()
        scores = torch.stack([adapter._score(flat, d) for d in adapter._memories]).reshape(-1, b, length)
        above = scores > torch.tensor(adapter.thresholds())[:, None, None]
        shifted = torch.zeros_like(x, dtype=torch.float32)
        shifted[:, 1:] = x[:, :-1].float()
        sims = torch.einsum("mi,bli->mbl", prev_keys, nnf.normalize(shifted, dim=-1))
        ok = (sims > cosine) & (torch.arange(length) > 0)[None, None]
        above &= ok | alone[:, None, None]
        best = torch.where(above, scores, torch.full_like(scores, float("-inf"))).max(0)  # over memories
        extra = torch.zeros(b, length, out.shape[-1])
        for row in range(b):
            for pos in torch.nonzero(torch.isfinite(best.values[row])).flatten().tolist():
                m = int(best.indices[row, pos])
                extra[row, pos] = x[row, pos].float() @ adapter._memories[m].T
        return (out.float() + extra).to(out.dtype)

    adapter.forward = bigram_forward
    score(f"bigram gate, cosine {cosine} ({int(alone.sum())} one-token subjects)")
    adapter.forward = position_forward


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
