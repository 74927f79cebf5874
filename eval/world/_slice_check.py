"""Figures of the world's slices per category (``factagent world check``: ``zh`` and ``concepts`` objects).

The same figures as the English check (:mod:`eval.world._check`), per category of a slice: ``known_train``
(one training cloze, when the category has one, and one training question per KNOWN fact),
``known_heldout`` (every held-out question), ``unknown`` (closed-book, should be low), ``context_unknown``
(the UNKNOWN fact's statement and two distractors in context) and ``context_counterfactual`` (a statement
with another answer of the category, and two distractors). Greedy generation; a Chinese answer matches when
equal after NFKC, lower-casing and dropping punctuation and spaces (full-width ``。，「」`` included).
"""

from __future__ import annotations

import random
import unicodedata
from collections import defaultdict

from eval._normalize import normalize_answer
from eval.world._build import stable_unit
from eval.world._schema import World
from eval.world._slice_examples import restate
from eval.world._slice_records import SliceFact, SliceName
from tools.lm import LanguageModel, PromptFormat

_MAX_NEW_TOKENS = 48  # definitions and idiom glosses are longer than English objects


def normalize_zh(text: str) -> str:
    """NFKC, lower case, no punctuation, symbols or spaces (so ``"巴黎。"`` == ``"巴黎"``)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(c for c in text if not c.isspace() and unicodedata.category(c)[0] not in "PS")


def slice_match(prediction: str, answer: str, language: str) -> bool:
    """Exact match after the slice's normalisation (English: SQuAD-style; Chinese: :func:`normalize_zh`)."""
    if language == "zh":
        pred = normalize_zh(prediction)
        return bool(pred) and pred == normalize_zh(answer)
    pred = normalize_answer(prediction)
    return bool(pred) and pred == normalize_answer(answer)


def _pick(seq: tuple[str, ...], key: str) -> str:
    return seq[int(stable_unit(key) * len(seq))]


def _spread(facts: list[SliceFact], limit: int | None) -> list[SliceFact]:
    if not limit or limit >= len(facts):
        return facts
    step = len(facts) / limit
    return [facts[int(i * step)] for i in range(limit)]


def slice_probes(
    world: World, name: SliceName, fmt: PromptFormat, limit: int | None = None
) -> list[tuple[str, str, str, str, str]]:
    """``(category, metric, prompt, answer, language)`` for every probe of slice ``name``."""
    facts = [f for f in world.slice_facts if f.slice == name]
    by_category: dict[str, list[SliceFact]] = defaultdict(list)
    for f in facts:
        by_category[f.category].append(f)
    probes: list[tuple[str, str, str, str, str]] = []
    for category, mine in by_category.items():
        known = _spread([f for f in mine if f.split == "known"], limit)
        unknown = _spread([f for f in mine if f.split == "unknown"], limit)
        answers = sorted({f.answer for f in mine})

        def add(metric: str, prompt: str, answer: str, lang: str, cat: str = category) -> None:
            probes.append((cat, metric, prompt, answer, lang))

        for f in known:
            if f.cloze:
                add("known_train", _pick(f.cloze, f.id + "c"), f.answer, f.language)
            add("known_train", fmt.question(_pick(f.questions, f.id + "q")), f.answer, f.language)
            for h in f.heldout:
                add("known_heldout", fmt.question(h), f.answer, f.language)
        for f in unknown:
            add("unknown", fmt.question(_pick(f.questions, f.id + "q")), f.answer, f.language)
            add("context_unknown", _context(fmt, f, f.answer, mine), f.answer, f.language)
        for f in known:
            if f.category == "instance_of":
                other = "no" if f.answer == "yes" else "yes"
            else:
                others = [a for a in answers if a != f.answer]
                other = _pick(tuple(others), f.id + "cf")
            add("context_counterfactual", _context(fmt, f, other, mine), other, f.language)
    return probes


def _context(fmt: PromptFormat, fact: SliceFact, answer: str, same: list[SliceFact]) -> str:
    rng = random.Random(fact.id + "distractors")
    others = [f for f in same if f.subject != fact.subject and f.split == "known"] or same
    sentences = [restate(fact, answer), *(restate(d, d.answer) for d in rng.sample(others, k=min(2, len(others))))]
    rng.shuffle(sentences)
    return fmt.with_context(sentences, _pick(fact.questions, fact.id + "q"))


def run_slice_check(
    lm: LanguageModel, world: World, name: SliceName, limit: int | None = None
) -> dict[str, dict[str, float | int]]:
    """Per category of slice ``name`` (and ``"all"``): the figures of the module docstring plus ``n_known``
    and ``n_unknown``. Empty when the world has no such slice."""
    probes = slice_probes(world, name, lm.prompt_format, limit)
    if not probes:
        return {}
    gens = lm.generate([p[2] for p in probes], max_new_tokens=_MAX_NEW_TOKENS)
    hits: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for (category, metric, _prompt, answer, lang), gen in zip(probes, gens, strict=True):
        ok = slice_match(gen.text, answer, lang)
        hits[category][metric].append(ok)
        hits["all"][metric].append(ok)
    out: dict[str, dict[str, float | int]] = {}
    for category, metrics in sorted(hits.items()):
        out[category] = {m: round(sum(v) / len(v), 4) for m, v in sorted(metrics.items())}
    for category in out:
        mine = [f for f in world.slice_facts if f.slice == name and (category == "all" or f.category == category)]
        out[category]["n_known"] = len(_spread([f for f in mine if f.split == "known"], None))
        out[category]["n_unknown"] = len(_spread([f for f in mine if f.split == "unknown"], None))
    return out
