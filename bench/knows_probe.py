# ruff: noqa: T201
"""Go/no-go for issue 17: does a linear probe on GPT-2's hidden states tell "the model knows" apart?

What it measures, on the world's reference model (``eval/world/models/gpt2-world``, the agent's default; 4
layers, width 192):

* features: the residual stream after each block (``L1``-``L3``; ``L4`` is the last block's after the final
  layer norm) at the last token of the closed-book question prompt (``prompt_format.question``: ``last_q``),
  at the model's greedy first answer token (``first_a``), or both; standardised, one L2 logistic regression
  (numpy, Newton; ``l2`` its penalty);
* labels: ``right``: the closed-book answer is right (exact match), fitted on every fit item (wrong answers and
  unanswerable questions 0); ``known``: known-and-right against unanswerable only;
* folds: the world has no train split of questions (every fact's questions are ``dev`` or ``test``), so the
  probe is cross-fitted on dev and never reads a test item: dev subjects are split in two by a hash of the
  name; the probe fitted on fold A's data scores fold B's dev questions and the other way round. Fit data of a
  fold: its dev facts (known and unknown) asked with every training and paraphrase question template of their
  relation, and unanswerable questions built as the world builds them (``eval.world._build``): real people
  asked for a person relation the world has no fact of (none of them a dev or test question) and invented
  syllable names (a seed the world does not use);
* compared on the held-out dev questions (918 known, 772 of them answered right closed-book; 628 unknown;
  157 unanswerable, 50 of them a real person with a missing relation): AUCs, and the share of known-right
  answers kept when at most 2% (or none) of the unanswerable dev questions get an answer: each signal alone,
  the policy's parametric gate (model confidence x familiarity x pmi on the calibration grid) and the gate
  with the probe as one more veto (its threshold on 20 quantiles); the gate's settings chosen on one dev fold
  and applied to the other (two-fold cross-validation), and chosen on all dev and applied to world:test
  (``--test-cache``: 2,092 known, 343 unanswerable; the probe there is the mean of the two folds' probes).

Run (nice 10, one thread; ~4 min for dev and ~4 min for test on 2 shared cores at load 3-5)::

    PYTHONPATH=. nice -n 10 env OMP_NUM_THREADS=1 python -m bench.knows_probe --home H --json out.json \
        --cache dev.npz --test-cache test.npz

``H`` is a home with the world loaded (the agent's signals are read there; e.g. one ``factagent calibrate``
ran on). Deterministic: a rerun from the caches gives the same figures; ``--fold-salt S`` splits the
subjects into other folds (the caches stay valid).

Findings (2026-12-05, the run above; dev AUCs out of fold):

======================================  ==========  ==========  ==============  ===========  ===========
signal                                  AUC right   AUC right   AUC right vs    known-right  known-right
                                        vs unansw.  vs missing  wrong (answ.)   kept, 2%     kept, 0
======================================  ==========  ==========  ==============  ===========  ===========
model_confidence                        0.905       0.881       0.905           0.137        0.003
familiarity                             0.956       0.874       0.462           0.573        0.222
pmi                                     0.572       0.560       0.343           0.048        0.005
probe last_q all layers, known, l2 1    0.868       0.855       0.654           0.466        0.253
probe last_q L3, known, l2 1            0.850       0.843       0.626           0.411        0.141
probe last_q all, right, l2 1           0.835       0.819       0.713           0.395        0.356
probe first_a all, known, l2 100        0.759       0.734       0.636           0.176        0.159
probe both all, known, l2 100           0.847       0.816       0.674           0.324        0.150
======================================  ==========  ==========  ==============  ===========  ===========

* Alone the probe does not beat the signals the policy has: its best AUC (0.868, chosen on dev) is 0.04 below
  model confidence and 0.09 below familiarity; on the hard case, a real person asked for a relation with no
  fact, 0.855 against 0.881. The first answer token carries less than the last question token.
* As one more veto on top of the gate it keeps more known answers at the same number of unanswerable ones
  answered. Two-fold cross-validation on dev (settings chosen on one half, counted on the other): 2% per fold
  0.740 -> 0.811 of known-right kept, 9 of 157 unanswerable answered both; none per fold 0.597 -> 0.712, 5 of
  157 both (held out, both break the 2%). world:test, settings chosen on all dev: with the shipped rule (95%
  Clopper-Pearson bound: none of the 157 answered on dev) known answered right 0.417 -> 0.509, unanswerable
  answered 0 -> 3 of 343 (0.9%), known answered wrong 5 -> 5 (the probe replaces the familiarity veto:
  -2.0 -> -12.0); with the 2% share rule 0.615 -> 0.664 but unanswerable 7 -> 15 of 343 (4.4%, over 2%).
* The veto's figures depend on the fold split (``--fold-salt a`` / ``b``, same features, other halves of the
  subjects; first figure the default split's): dev AUC known-right vs unanswerable 0.868 / 0.876 / 0.871, vs
  missing 0.855 / 0.844 / 0.832; cross-validated known-right kept with none allowed per fold, gate -> gate +
  probe: 0.597 -> 0.712 (5 -> 5 unanswerable, 1 -> 1 known wrong), 0.561 -> 0.725 (2 -> 2, 0 -> 1), 0.639 ->
  0.707 (4 -> 6, 0 -> 26); world:test, shipped rule: 0.417 -> 0.509 (0 -> 3 of 343 unanswerable, 5 -> 5 known
  wrong), 0.417 -> 0.592 (0 -> 8 of 343 = 2.3%, 5 -> 12), 0.417 -> 0.561 (0 -> 9 = 2.6%, 5 -> 17). In two
  splits of three the probe's settings answer more than 2% of the unanswerable test questions.
* Verdict: **no-go**. No AUC gain (a loss of 0.03-0.09 against the policy's signals); the coverage gain as a
  veto is real on dev (+7 to +16 points of known-right kept at matched unanswerable answered in most splits)
  but does not hold within 2% unanswerable on test in 2 of 3 splits, nor with the 2% share rule. Even where it
  holds, known questions are 2,092 of the 4,442 answerable test questions, so the audit's coverage could rise
  by at most ~4 points (0.736 on the full audit): the 90% target is out of reach through this signal.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.world._build import PERSON_RELATIONS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One question for the probe: its text, gold answers (empty: unanswerable), kind, subject, fold."""

    text: str
    answers: tuple[str, ...]
    kind: str  # known | unknown | unanswerable | missing (real person, relation without a fact) | invented
    subject: str
    fold: int
    relation: str = ""


CV_PROBES = ("last_q_all_known_l2=1", "last_q_L3_known_l2=1", "last_q_all_right_l2=1", "both_all_known_l2=100")


FOLD_SALT = [""]  # --fold-salt: another split of the subjects into two folds (the default: none)


def fold_of(subject: str) -> int:
    """The subject's fold, 0 or 1 (a hash of its name, salted by ``FOLD_SALT``)."""
    return hashlib.sha256((FOLD_SALT[0] + subject).encode()).digest()[0] & 1


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties half."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks of ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r = ranks[: len(pos)].sum()
    return float((r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 300) -> tuple[np.ndarray, float]:
    """L2 logistic regression by Newton's method on standardised features (x already standardised)."""
    n, d = x.shape
    w, b = np.zeros(d), 0.0
    xb = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xb @ theta)))
        grad = xb.T @ (p - y) + reg * theta
        h = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-6 * np.eye(d + 1)
        step = np.linalg.solve(h, grad)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    w, b = theta[:-1], float(theta[-1])
    return w, b


def world_items(world: Any, seed: int) -> tuple[list[Item], list[Item]]:
    """(fit items, dev eval items); see the module docstring."""
    from eval.world._build import fill
    from eval.world._names import syllable_name

    rels = {r.id: r for r in world.relations}
    dev_facts = {q.fact_id for q in world.questions if q.split == "dev" and q.kind in ("known", "unknown")}
    fit: list[Item] = []
    for f in world.facts:
        if f.id not in dev_facts:
            continue
        r = rels[f.relation]
        templates = list(r.questions) + [t for t in r.paraphrases if t.rstrip().endswith("?")]
        for t in templates:
            fit.append(
                Item(
                    text=fill(t, f.subject),
                    answers=(f.object,),
                    kind=f.split,
                    subject=f.subject,
                    fold=fold_of(f.subject),
                    relation=f.relation,
                )
            )
    # unanswerable, built as the world builds them but never one of its own (dev or test)
    has = {(f.subject, f.relation) for f in world.facts}
    has |= {(q.subject, q.relation) for q in world.questions if q.kind == "unanswerable"}
    people = sorted({f.subject for f in world.facts if f.relation in PERSON_RELATIONS})
    rng = random.Random(f"{seed}:probe-missing")
    missing = [(p, r) for p in people for r in PERSON_RELATIONS if (p, r) not in has]
    rng.shuffle(missing)
    n_missing = sum(1 for it in fit if it.kind == "known") // 2
    for p, rid in missing[:n_missing]:
        t = rng.choice(rels[rid].questions)
        fit.append(Item(text=fill(t, p), answers=(), kind="missing", subject=p, fold=fold_of(p), relation=rid))
    taken = {w for f in world.facts for name in (f.subject, f.object) for w in name.split()}
    taken |= {w for q in world.questions for w in q.subject.split()}
    rng = random.Random(f"{seed}:probe-invented")
    n_inv = 0
    while n_inv < n_missing // 2:
        name = syllable_name(rng)
        if any(w in taken for w in name.split()):
            continue
        r = rng.choice(world.relations)
        fit.append(
            Item(
                text=fill(rng.choice(r.questions), name),
                answers=(),
                kind="invented",
                subject=name,
                fold=fold_of(name),
                relation=r.id,
            )
        )
        n_inv += 1
    people_set = set(people)
    dev: list[Item] = []
    for q in world.questions:
        if q.split != "dev" or q.kind not in ("known", "unknown", "unanswerable"):
            continue
        kind = q.kind
        if kind == "unanswerable":
            kind = "missing" if q.subject in people_set else "invented"
        dev.append(
            Item(
                text=q.text,
                answers=tuple(q.answers),
                kind=kind,
                subject=q.subject,
                fold=fold_of(q.subject),
                relation=q.relation,
            )
        )
    return fit, dev


@torch.no_grad()
def hidden_features(model: Any, tokenizer: Any, prompts: Sequence[str], first_tokens: Sequence[int]) -> np.ndarray:
    """(N, 2, L, D): per prompt, the residual stream at its last token and at its greedy first answer token,
    for each layer's output (the last one after the final layer norm as well)."""
    out = []
    for prompt, tok in zip(prompts, first_tokens, strict=True):
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] + [tok]
        res = model(torch.tensor([ids]), output_hidden_states=True)
        hs = torch.stack(res.hidden_states[1:])[:, 0]  # (L, T, D)
        out.append(torch.stack([hs[:, -2], hs[:, -1]]).float().numpy())
    return np.stack(out)


def first_answer_tokens(model: Any, tokenizer: Any, prompts: Sequence[str]) -> list[int]:
    toks = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            toks.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return toks


def kept_at_budget(score: np.ndarray, good: np.ndarray, unans: np.ndarray, rate: float = 0.02) -> float:
    """Share of ``good`` questions whose score clears the lowest threshold answering <= ``rate`` of ``unans``."""
    u = np.sort(score[unans])[::-1]
    k = int(np.floor(rate * len(u) + 1e-9))  # may answer k unanswerable questions
    thr = u[k] if k < len(u) else -np.inf  # strictly above the (k+1)-th highest unanswerable score
    return float((score[good] > thr).mean())


def measure(fit: Sequence[Item], dev: Sequence[Item], home: str) -> tuple[Any, ...]:
    """Hidden states and graded closed-book answers of every item; the agent's signals for the dev items."""
    from agent import Agent
    from agent.config import open_home
    from eval import exact_match
    from eval.world import MODELS_DIR
    from tools.lm._hf import HFLanguageModel

    hf = HFLanguageModel.load(MODELS_DIR / "gpt2-world", device="cpu", dtype=torch.float32)
    model, tok, fmt = hf._model, hf._tokenizer, hf.prompt_format
    model.eval()
    items = [*fit, *dev]
    prompts = [fmt.question(it.text) for it in items]
    gens = hf.generate(prompts, max_new_tokens=12)
    right = np.array([bool(it.answers) and exact_match(g.text, it.answers) for it, g in zip(items, gens, strict=True)])
    firsts = first_answer_tokens(model, tok, prompts)
    feats = hidden_features(model, tok, prompts, firsts)  # (N, 2, L, D)
    logger.info("features %s", feats.shape)
    nfit = len(fit)

    # the agent's own signals for the dev questions (its default model: the same weights)
    agent = Agent.open(open_home(home), with_tell=False)
    try:
        sig = []
        for start in range(0, len(dev), 64):
            sig += agent.signals([it.text for it in dev[start : start + 64]])
    finally:
        agent.close()
    conf = np.array([s.model_confidence if s.model and s.model.text else -1.0 for s in sig])
    fam = np.array([0.0 if s.familiarity is None else s.familiarity for s in sig])
    pmi = np.array([100.0 if s.pmi is None else s.pmi for s in sig])
    agent_right = np.array(
        [
            bool(it.answers) and s.model is not None and exact_match(s.model.text, it.answers)
            for it, s in zip(dev, sig, strict=True)
        ]
    )
    same = float((agent_right == right[nfit:]).mean())
    logger.info("agent closed-book answers graded as the probe's: %.3f agree", same)
    return feats, right, conf, fam, pmi, agent_right, same


def on_test(
    world: Any, args: argparse.Namespace, fold_models: Any, probes: Any, best_gate: Any, unans: np.ndarray
) -> dict[str, Any]:
    """Settings chosen on all dev questions (probe scores out of fold), applied to the world:test questions
    (their signals and hidden states measured here; the probe is the mean of the two folds' probes)."""
    people = {f.subject for f in world.facts if f.relation in PERSON_RELATIONS}
    test = [
        Item(
            text=q.text,
            answers=tuple(q.answers),
            kind=q.kind if q.kind != "unanswerable" else ("missing" if q.subject in people else "invented"),
            subject=q.subject,
            fold=fold_of(q.subject),
            relation=q.relation,
        )
        for q in world.questions
        if q.split == "test" and q.kind in ("known", "unknown", "unanswerable")
    ]
    if Path(args.test_cache).exists():
        z = np.load(args.test_cache)
        feats, conf, fam, pmi, agent_right = (z[k] for k in ("feats", "conf", "fam", "pmi", "agent_right"))
    else:
        feats, _, conf, fam, pmi, agent_right, _ = measure([], test, args.home)
        np.savez(args.test_cache, feats=feats, conf=conf, fam=fam, pmi=pmi, agent_right=agent_right)
    kinds = np.array([it.kind for it in test])
    t_good_known = kinds == "known"
    t_unans = np.isin(kinds, ["missing", "invented"])
    out: dict[str, Any] = {"n": len(test), "known": int(t_good_known.sum()), "unanswerable": int(t_unans.sum())}
    out["known_right_closed_book"] = float(agent_right[t_good_known].mean())
    name = CV_PROBES[0]
    score = np.zeros(len(test))
    for pos, layers, mu, sd, w, b in fold_models[name]:
        x = feats[:, pos][:, :, layers].reshape(len(test), -1)
        score += (((x - mu) / sd) @ w + b) / len(fold_models[name])
    qs = [-np.inf, *np.quantile(probes[name], np.linspace(0.05, 0.95, 19))]
    for label, budget in (("2pct_share", int(np.floor(0.02 * unans.sum() + 1e-9))), ("95pct_bound", 0)):
        for with_probe in (False, True):
            t = best_gate(probes[name], qs, budget) if with_probe else best_gate(None, [0.0], budget)
            takes = (conf >= t["model"]) & (conf >= 0) & (fam >= t["familiarity"]) & (pmi >= t["pmi"])
            if with_probe:
                takes &= score >= t["probe"]
            out[f"{label}_{'gate_plus_probe' if with_probe else 'gate'}"] = {
                "thresholds": t,
                "known_answered_right": float((takes & t_good_known & agent_right).sum() / t_good_known.sum()),
                "known_answered_wrong": int((takes & t_good_known & ~agent_right).sum()),
                "unanswerable_answered": int((takes & t_unans).sum()),
                "missing_answered": int((takes & (kinds == "missing")).sum()),
                "unknown_answered_wrong": int((takes & (kinds == "unknown") & ~agent_right).sum()),
            }
            logger.info(
                "test %s %s: %s", label, with_probe, out[f"{label}_{'gate_plus_probe' if with_probe else 'gate'}"]
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from agent._calibrate import GRID
    from eval.world import DATA_DIR, load_world

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", default="")
    ap.add_argument("--cache", default="", help="an .npz keeping the features and signals between runs")
    ap.add_argument("--fold-salt", default="", help="split the subjects into other folds (features reused)")
    ap.add_argument("--test-cache", default="", help="also apply dev-chosen settings to world:test (its .npz)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.manual_seed(0)

    world = load_world(DATA_DIR)
    FOLD_SALT[0] = args.fold_salt
    fit, dev = world_items(world, args.seed)
    logger.info("fit items %d, dev items %d", len(fit), len(dev))
    if args.cache and Path(args.cache).exists():
        z = np.load(args.cache)
        feats, right, conf, fam, pmi, agent_right = (
            z[k] for k in ("feats", "right", "conf", "fam", "pmi", "agent_right")
        )
        same = float((agent_right == right[len(fit) :]).mean())
    else:
        feats, right, conf, fam, pmi, agent_right, same = measure(fit, dev, args.home)
        if args.cache:
            np.savez(args.cache, feats=feats, right=right, conf=conf, fam=fam, pmi=pmi, agent_right=agent_right)
    items = [*fit, *dev]
    nfit = len(fit)
    kinds = np.array([it.kind for it in items])
    folds = np.array([it.fold for it in items])
    is_fit = np.arange(len(items)) < nfit
    dk = kinds[nfit:]
    good = (dk == "known") & agent_right
    unans = np.isin(dk, ["missing", "invented"])
    missing = dk == "missing"
    ans_mask = conf >= 0  # the model gave an answer
    report: dict[str, Any] = {"n_fit": nfit, "n_dev": len(dev), "agent_vs_probe_grading_agree": same}
    report["dev_counts"] = {k: int((dk == k).sum()) for k in ("known", "unknown", "missing", "invented")}
    report["dev_known_right"] = int(good.sum())
    report["fit_counts"] = {k: int((kinds[:nfit] == k).sum()) for k in ("known", "unknown", "missing", "invented")}
    report["fit_right"] = int(right[:nfit].sum())

    def summary(score: np.ndarray) -> dict[str, float]:
        return {
            "auc_known_right_vs_unanswerable": auc(score[good], score[unans]),
            "auc_known_right_vs_missing": auc(score[good], score[missing]),
            "auc_right_vs_wrong_answered": auc(score[ans_mask & agent_right], score[ans_mask & ~agent_right]),
            "known_right_kept_2pct": kept_at_budget(score, good, unans),
            "known_right_kept_0": kept_at_budget(score, good, unans, 0.0),
        }

    report["model_confidence"] = summary(conf)
    report["familiarity"] = summary(fam)
    report["pmi"] = summary(pmi)
    # label "right": every fit item (wrong and unanswerable = 0); label "known": known-and-right against the
    # unanswerable ones only (unknown facts and wrong answers left out of the fit)
    fit_known = is_fit & (((kinds == "known") & right) | np.isin(kinds, ["missing", "invented"]))
    positions = {"last_q": [0], "first_a": [1], "both": [0, 1]}
    layer_sets = {"L1": [0], "L2": [1], "L3": [2], "L4": [3], "all": [0, 1, 2, 3]}
    probes: dict[str, np.ndarray] = {}
    fold_models: dict[str, list[tuple[Any, ...]]] = {}
    for (pname, pos), (lname, layers), (label, mask), l2 in itertools.product(
        positions.items(), layer_sets.items(), (("right", is_fit), ("known", fit_known)), (1.0, 100.0, 3000.0)
    ):
        if pname != "last_q" and lname not in ("L3", "all"):
            continue
        x = feats[:, pos][:, :, layers].reshape(len(items), -1)
        score = np.zeros(len(dev))
        name = f"{pname}_{lname}_{label}_l2={l2:g}"
        for f in (0, 1):
            tr = mask & (folds == f)
            te = (~is_fit) & (folds != f)
            mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
            w, b = fit_logistic((x[tr] - mu) / sd, right[tr].astype(float), l2=l2)
            score[te[nfit:]] = ((x[te] - mu) / sd) @ w + b
            fold_models.setdefault(name, []).append((pos, layers, mu, sd, w, b))
        probes[name] = score
        report[f"probe_{name}"] = summary(score)
        logger.info("%s %s", name, report[f"probe_{name}"])

    def best_gate(
        extra: np.ndarray | None, extra_grid: Sequence[float], budget: int, on: np.ndarray | None = None
    ) -> dict[str, float]:
        """Best (model, familiarity, pmi[, probe]) on the questions ``on`` (all) answering <= ``budget``
        unanswerable ones."""
        sel = np.ones(len(dev), dtype=bool) if on is None else on
        best: tuple[float, dict[str, float]] = (-1.0, {})
        for m, fa, p in itertools.product(GRID["model"], GRID["familiarity"], GRID["pmi"]):
            base = sel & (conf >= m) & (conf >= 0) & (fam >= fa) & (pmi >= p)
            for e in extra_grid:
                takes = base if extra is None else base & (extra >= e)
                if (takes & unans).sum() <= budget:
                    cov = float((takes & good).sum() / max(int((good & sel).sum()), 1))
                    if cov > best[0]:
                        wrong = int((takes & (dk == "known") & ~agent_right).sum())
                        best = (cov, {"model": m, "familiarity": fa, "pmi": p, "probe": e, "wrong_known": wrong})
        return {"known_right_kept": best[0], **best[1]}

    def cross_validated(extra: np.ndarray | None, extra_grid: Sequence[float], rate: float) -> dict[str, float]:
        """Thresholds chosen on one fold's dev questions, applied to the other's (both ways, summed)."""
        kept = unans_answered = wrong = 0
        dev_fold = folds[nfit:]
        for f in (0, 1):
            on, off = dev_fold == f, dev_fold != f
            t = best_gate(extra, extra_grid, int(np.floor(rate * (unans & on).sum() + 1e-9)), on)
            takes = off & (conf >= t["model"]) & (conf >= 0) & (fam >= t["familiarity"]) & (pmi >= t["pmi"])
            if extra is not None:
                takes &= extra >= t["probe"]
            kept += int((takes & good).sum())
            unans_answered += int((takes & unans).sum())
            wrong += int((takes & (dk == "known") & ~agent_right).sum())
        return {
            "known_right_kept": kept / max(int(good.sum()), 1),
            "unanswerable_answered": unans_answered,
            "of": int(unans.sum()),
            "wrong_known": wrong,
        }

    ranked = sorted(probes, key=lambda k: -report[f"probe_{k}"]["auc_known_right_vs_unanswerable"])
    report["best_probes"] = ranked[:5]
    for budget_name, budget in (("2pct", int(np.floor(0.02 * unans.sum() + 1e-9))), ("0", 0)):
        report[f"gate_{budget_name}"] = best_gate(None, [0.0], budget)
        for name in ranked[:2]:
            qs = [-np.inf, *np.quantile(probes[name], np.linspace(0.05, 0.95, 19))]
            report[f"gate_plus_{name}_{budget_name}"] = best_gate(probes[name], qs, budget)
    for rate in (0.02, 0.0):
        report[f"cv_gate_{rate:g}"] = cross_validated(None, [0.0], rate)
        for name in CV_PROBES:
            qs = [-np.inf, *np.quantile(probes[name], np.linspace(0.05, 0.95, 19))]
            report[f"cv_gate_plus_{name}_{rate:g}"] = cross_validated(probes[name], qs, rate)
            logger.info("cv %s %s: %s", name, rate, report[f"cv_gate_plus_{name}_{rate:g}"])
    if args.test_cache:
        report["test"] = on_test(world, args, fold_models, probes, best_gate, unans)
    print(json.dumps(report, indent=1, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
