# ruff: noqa: T201
"""Diagnosis of AlphaEdit's solve on a reference model: null-space energy and key responses, no value fit.

For a batch of ``B`` DEV edits (``edits_lifelong.jsonl``, the train split; seed 0, the ones the model knows) and
each layer: MEMIT's right factor ``(λ C + K Kᵀ)⁻¹ K`` and AlphaEdit's ``P (P G P + α I)⁻¹ P K`` (plain, and
whitened with ``λ C`` inside the null space), ``P`` from three candidate preserved-key sets ``K0``: the corpus's
key second moment (the reference implementation's), the keys at the last subject token of the world's KNOWN
facts' cloze prompts (the test edits' subjects, their locality prompts and the batch left out), and their
trace-normalised sum. Each right factor is scaled as MEMIT's (``right_i · k_i = 1`` on request ``i``'s bare key),
so ``right · k`` is ``||ΔW k||`` relative to the edit's own change. Columns: the share of their energy the edits'
keys, the corpus's keys, the locality prompts' keys (every position of prompt and answer) and the subject keys
keep in the null space; the mean response of the paraphrases (own request, subject's last token); the median and
RMS response of the locality positions; the RMS response of a corpus key; of a known-fact subject key; ``|right|``.
Figures in ``tools/edit/_alphaedit.py``.

Example:
    PYTHONPATH=. python bench/alphaedit_diag.py eval/world/models/gpt2-world 10 --layers 0,1
    PYTHONPATH=. python bench/alphaedit_diag.py eval/world/models/gpt2-world 10 --energies 0.05,0.2 --alphas 1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _setup(model_dir: Path, batch: int) -> tuple[Any, list[Any], list[Any], list[str]]:
    """The model, the DEV batch's cases, the K0 requests of known facts, and the corpus."""
    import torch

    from eval.editing import select_cases, world_edit_cases
    from eval.world import DATA_DIR, load_lifelong_edits, load_world
    from tools.edit import EditRequest
    from tools.lm import HFLanguageModel

    lm = HFLanguageModel.load(model_dir, device="cpu", dtype=torch.float32)
    world = load_world(DATA_DIR)
    test = world_edit_cases(world, lm.prompt_format)
    dev = world_edit_cases(dataclasses.replace(world, edits=load_lifelong_edits(DATA_DIR, world)), lm.prompt_format)
    chosen: list[Any] = select_cases(lm, dev, batch, seed=0)
    relations = {r.id: r for r in world.relations}
    left_out = {c.request.subject for c in (*test, *chosen)}
    hood = {p.prompt for c in (*test, *chosen) for p in c.locality}
    known = []
    for fact in world.facts_in("known"):
        prompt = relations[fact.relation].cloze[0].format(fact.subject)
        if fact.subject not in left_out and prompt not in hood:
            known.append(EditRequest(prompt, fact.subject, fact.object))
    return lm, chosen, known, [d.text for d in world.documents]


def _position_keys(lm: Any, path: str, texts: list[str]) -> Any:
    """Keys at every position of each text, ``(N, in)`` float64."""
    import torch

    from tools.edit._hooks import Trace

    out = []
    with torch.no_grad():
        for text in texts:
            ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            with Trace(lm.model, path, retain_input=True) as trace:
                lm.model(input_ids=ids)
            assert trace.input is not None  # the hook ran
            out.append(trace.input[0].double())
    return torch.cat(out)


def main(argv: list[str]) -> int:
    """Print one table per layer (the module docstring)."""
    import torch

    from tools.edit import EditRequest, family_of
    from tools.edit._alphaedit import null_space_projector, projected_solve
    from tools.edit._keys import context_templates, subject_keys
    from tools.edit._stats import second_moment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("batch", type=int)
    parser.add_argument("--layers", default="0,1")
    parser.add_argument("--energies", type=_floats, default=[1e-3, 1e-2, 5e-2, 0.2])
    parser.add_argument("--alphas", type=_floats, default=[1.0], help="α of the plain projected solve")
    parser.add_argument("--whiten-alpha", type=float, default=1e-2, help="α of the whitened one")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".factagent" / "cache" / "stats")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    lm, chosen, known, corpus = _setup(args.model, args.batch)
    family = family_of(lm.model)
    reqs = [c.request for c in chosen]
    templates = context_templates(lm, 5, 8, 0, question=True)
    print(f"{len(reqs)} DEV edits; {len(known)} known-fact prompts for the subject-key K0")
    for layer in (int(x) for x in args.layers.split(",")):
        path = family.path(family.mlp_out, layer)
        cov = second_moment(lm, layer, corpus=corpus, cache_dir=args.cache).matrix.double()
        each = subject_keys(lm, path, reqs, templates).double()  # (B, n_templates, in)
        keys, bare = each.reshape(-1, each.shape[-1]).T, each[:, 0]
        paras = []
        for c in chosen:
            said = [EditRequest(p, c.request.subject, "x") for p in c.paraphrases if c.request.subject in p]
            paras.append(subject_keys(lm, path, said, ("{}",)))
        loc = _position_keys(lm, path, [p.prompt + " " + p.answer for c in chosen for p in c.locality])
        subj = torch.cat([subject_keys(lm, path, known[i : i + 256], ("{}",))[:, 0] for i in range(0, len(known), 256)])
        subj = subj.double()
        cov_s = subj.T @ subj / subj.shape[0]
        lam = 1000.0 * len(reqs) ** 0.5  # MEMIT's default λ for this batch

        def scaled(adj: torch.Tensor, bare: torch.Tensor = bare) -> torch.Tensor:
            right = adj.view(adj.shape[0], len(reqs), -1).sum(2).T  # (B, in)
            return right / (right * bare).sum(1, keepdim=True)

        rows: list[tuple[str, torch.Tensor, torch.Tensor | None]] = [
            ("memit", scaled(torch.linalg.solve(lam * cov + keys @ keys.T, keys)), None)
        ]
        sources = {"corpus": cov, "subj": cov_s, "mix": cov / cov.trace() + cov_s / cov_s.trace()}
        for name, source in sources.items():
            for energy in args.energies:
                proj, dim = null_space_projector(source, energy)
                for alpha in args.alphas:
                    adj = projected_solve(proj, keys, keys @ keys.T, alpha)
                    rows.append((f"{name} e{energy:g} d{dim} a{alpha:g}", scaled(adj), proj))
                adj = projected_solve(proj, keys, keys @ keys.T, args.whiten_alpha, lam * cov)
                rows.append((f"{name} e{energy:g} whiten", scaled(adj), proj))
        print(f"\n== layer {layer}")
        print(f"{'setting':27s} Pk:edit corpus  local  subj | para loc_med loc_rms corp_rms subj_rms |right|")
        for name, right, kept in rows:
            print(f"{name:27s} {_energies(kept, bare, cov, loc, subj)} | {_responses(right, paras, loc, cov, subj)}")
    return 0


def _energies(proj: Any, bare: Any, cov: Any, loc: Any, subj: Any) -> str:
    if proj is None:
        return "     -      -      -     -"

    def share(k: Any) -> float:
        return float(((k @ proj) * k).sum(1).mean() / (k * k).sum(1).mean())

    corpus = float((proj @ cov).trace() / cov.trace())
    return f"{share(bare):7.3f} {corpus:6.3f} {share(loc):6.3f} {share(subj):5.3f}"


def _responses(right: Any, paras: list[Any], loc: Any, cov: Any, subj: Any) -> str:
    import torch

    own = torch.cat([p[:, 0].double() @ right[i] for i, p in enumerate(paras)])
    on_loc = (loc @ right.T).norm(dim=1)
    corpus = float((right @ cov @ right.T).trace().sqrt())
    on_subj = float(((subj @ right.T) ** 2).sum(1).mean().sqrt())
    return (
        f"{float(own.mean()):4.2f} {float(on_loc.median()):7.3f} {float((on_loc**2).mean().sqrt()):7.3f} "
        f"{corpus:8.3f} {on_subj:8.3f} {float(right.norm(dim=1).mean()):6.3f}"
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
