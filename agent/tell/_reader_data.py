"""Training sentences for the learned reader (:mod:`agent.tell._reader`): phrasings, names, negatives.

Phrasings come from the compositional grammar (:mod:`agent.tell._reader_grammar`: ~20,000 phrasings,
300-2,500 per relation, in active and passive voice, object first, possessives, relative clauses,
appositions, "took over", "moved to", abbreviations and misspelled relation words). Sentences are made by
filling the slots with names of the world's facts of that relation, optionally wrapped in discourse
markers ("Actually, ...", "... now"), given a typo outside the names, and half of them cleaned the way the
interpreter cleans a sentence before the reader reads it.

These phrasings are for *training only*. The benchmark's free phrasings (``eval/agent_bench/
_free_phrasings.py``) are written separately and never read here; ``tests/eval/test_free_phrasings.py``
checks that no phrasing is in both sets (also after the interpreter's cleaning), nor in the schema's own
templates.

``NONE`` sentences mention names but state none of the schema's relations (the reader must abstain).
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from agent.tell._reader_grammar import GRAMMAR, NEGATIVE_GRAMMAR, constructions, expand, grammar_phrasings
from agent.tell._sentences import clean_sentence

__all__ = [
    "NONE",
    "NO_RELATION_CONTRAST",
    "PERSON_PAIR_RELATIONS",
    "Example",
    "make_examples",
    "negative_phrasings",
    "perturb",
    "render",
    "split_by_construction",
    "training_constructions",
    "training_phrasings",
]

NONE = "none"


def training_phrasings() -> dict[str, tuple[str, ...]]:
    """Every relation's training phrasings: the compositional grammar's (:mod:`agent.tell._reader_grammar`)."""
    return {relation: tuple(grammar_phrasings(relation)) for relation in GRAMMAR}


def training_constructions() -> dict[str, dict[str, str]]:
    """Every relation's training phrasings -> their construction (:func:`agent.tell._reader_grammar.constructions`)."""
    return {relation: constructions(relation) for relation in GRAMMAR}


def negative_phrasings() -> tuple[str, ...]:
    """Phrasings that name two things and state no relation (expanded :data:`NEGATIVE_GRAMMAR`)."""
    return tuple(dict.fromkeys(p for n in NEGATIVE_GRAMMAR for p in expand(n)))


_PREFIXES = (
    "", "", "", "", "Actually, ", "FYI, ", "By the way, ", "Now ", "These days ", "As of this year, ",
    "Since last week, ", "Just so you know, ", "Update: ", "Note that ", "Breaking: ",
)  # fmt: skip
_SUFFIXES = ("", "", "", "", " now", " these days", " nowadays", " since March", " as of today")


@dataclass(frozen=True)
class Example:
    """One training sentence: the relation it states (or :data:`NONE`) and the character spans of its names."""

    text: str
    relation: str
    subject: tuple[int, int]  # (start, end) in ``text``; (0, 0) when the relation is NONE
    object: tuple[int, int]


def _article(phrasing: str, obj: str) -> str:
    """ "a {o}" -> "an {o}" before a vowel."""
    if obj[:1].lower() in "aeiou":
        return phrasing.replace(" a {o}", " an {o}")
    return phrasing


def render(phrasing: str, subject: str, obj: str, prefix: str = "", suffix: str = "") -> Example:
    """Fill ``phrasing`` and record where the names landed (``{s}`` and ``{o}`` each occur once)."""
    phrasing = _article(phrasing, obj)
    text = ""
    spans: dict[str, tuple[int, int]] = {}
    rest = phrasing
    while rest:
        i = min((rest.find(k) for k in ("{s}", "{o}") if k in rest), default=-1)
        if i < 0:
            text += rest
            break
        text += rest[:i]
        key, value = ("s", subject) if rest[i : i + 3] == "{s}" else ("o", obj)
        spans[key] = (len(text), len(text) + len(value))
        text += value
        rest = rest[i + 3 :]
    if prefix and text[:1].isupper() and prefix.rstrip().endswith((",", ":")) and text.split(" ")[0] in ("The",):
        text = text[0].lower() + text[1:]
    offset = len(prefix)
    full = prefix + text + suffix + "."
    s = spans.get("s", (-offset, -offset))
    o = spans.get("o", (-offset, -offset))
    return Example(full, "", (s[0] + offset, s[1] + offset), (o[0] + offset, o[1] + offset))


def perturb(ex: Example, rng: random.Random) -> Example:
    """``ex`` with one typo (two letters swapped, one dropped or doubled) in a word outside its names.

    People misspell relation words ("cheif", "headquaters"); names are left alone (the linker needs them).
    """
    names = [span for span in (ex.subject, ex.object) if span[1] > span[0]]
    words = [
        (m.start(), m.end())
        for m in re.finditer(r"[A-Za-z]{4,}", ex.text)
        if not any(m.start() < b and m.end() > a for a, b in names)
    ]
    if not words:
        return ex
    a, b = rng.choice(words)
    word = ex.text[a:b]
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        new = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    elif kind == 1:
        new = word[:i] + word[i + 1 :]
    else:
        new = word[:i] + word[i] + word[i:]
    delta = len(new) - len(word)

    def shift(span: tuple[int, int]) -> tuple[int, int]:
        return (span[0] + delta, span[1] + delta) if span[1] > span[0] and span[0] >= b else span

    return Example(ex.text[:a] + new + ex.text[b:], ex.relation, shift(ex.subject), shift(ex.object))


def cleaned(ex: Example) -> Example | None:
    """``ex`` as the interpreter hands it to the reader (:func:`~agent.tell._sentences.clean_sentence`:
    discourse markers, hedges and final punctuation gone), or ``None`` when its names cannot be found again."""
    text = clean_sentence(ex.text)
    spans = []
    for start, end in (ex.subject, ex.object):
        if end <= start:
            spans.append((0, 0))
            continue
        name = ex.text[start:end]
        at = text.find(name)
        if at < 0 or text.find(name, at + 1) >= 0:
            return None
        spans.append((at, at + len(name)))
    s, o = spans
    if s[1] > s[0] and o[1] > o[0] and s[0] < o[1] and o[0] < s[1]:
        return None
    return Example(text, ex.relation, s, o)


#: Relations between two people (or two characters): the same two names fit each of them either way round,
#: so their sentences get direction and relation contrasts (:func:`make_examples`).
PERSON_PAIR_RELATIONS: tuple[str, ...] = (
    "person_father", "person_mother", "spouse", "doctoral_advisor", "doctoral_student", "superhero_archnemesis",
)  # fmt: skip


#: Pairs of :data:`PERSON_PAIR_RELATIONS` never given a *relation* contrast: each other's schema inverses
#: ("A advised B" is "B's student is A" read from the other end), so the same two names in the same roles
#: state both and a contrast labelled with one teaches the reader to turn the other down (doctoral advisor
#: fell from 0.846 to 0.538 read right with them). Their *direction* contrasts stay.
NO_RELATION_CONTRAST: frozenset[frozenset[str]] = frozenset({frozenset({"doctoral_advisor", "doctoral_student"})})


def split_by_construction(
    phrasings: Sequence[str], construction: Mapping[str, str], share: float, rng: random.Random
) -> tuple[list[str], list[str]]:
    """``(fit, calibration)`` phrasings, split within each construction: ``share`` of each construction's
    phrasings, rounded down, go to calibration, so every construction has phrasings in fit and one of fewer
    than ``1 / share`` phrasings is all in fit ("{o} (fathered|sired|begat) {s}" is 3: none is left to
    calibration alone, as "{o} fathered {s}" was by a split over all phrasings). Seeded by ``rng``; each
    part keeps the order of ``phrasings``.
    """
    cal: set[str] = set()
    for group in _by_construction(phrasings, construction):
        pool = sorted(group)
        rng.shuffle(pool)
        cal.update(pool[: int(len(pool) * share)])
    return [p for p in phrasings if p not in cal], [p for p in phrasings if p in cal]


def _by_construction(phrasings: Sequence[str], construction: Mapping[str, str]) -> list[list[str]]:
    """``phrasings`` grouped by their construction (groups in order of first appearance; a phrasing with no
    construction is its own group)."""
    groups: dict[str, list[str]] = {}
    for p in phrasings:
        groups.setdefault(construction.get(p, "phrasing:" + p), []).append(p)
    return list(groups.values())


def make_examples(
    phrasings: Mapping[str, Sequence[str]],
    names: Mapping[str, Sequence[tuple[str, str]]],
    *,
    per_relation: int,
    negatives: Sequence[str] = (),
    n_negative: int = 0,
    typo_rate: float = 0.0,
    clean_rate: float = 0.5,
    seed: int = 0,
    constructions: Mapping[str, Mapping[str, str]] | None = None,
    contrast: Sequence[str] = (),
    contrast_rate: float = 0.0,
    no_relation_contrast: Collection[frozenset[str]] = (),
) -> list[Example]:
    """Sentences from phrasings drawn at random, with names drawn from that relation's ``(subject, object)`` pairs.

    With ``constructions``, a sentence's phrasing is drawn in two steps: one of the relation's constructions
    uniformly, then one of its phrasings; otherwise phrasings are drawn uniformly (a construction then weighs
    by how many phrasings it expands to, and "{o} fathered {s}" is 3 of person_father's 1,249).

    Contrasts (relations in ``contrast``, each sentence with probability ``contrast_rate`` for each kind):
    *direction*: the same phrasing right after with the two names swapped, so the names' roles follow the
    words, not the names ("A fathered B" and "B fathered A"); *relation*: the same two names in the same
    roles in a phrasing of another relation of ``contrast`` ("A fathered B" and "A gave birth to B"). Both
    carry their own correct labels, and count in ``per_relation``. A phrasing two ``contrast`` relations share
    (:data:`agent.tell._reader_grammar.BORN_TO`) states either: its sentence is followed by the same sentence
    labelled with the other relation (counted in ``per_relation``, which it may pass by one), so the names (a
    father's, a mother's) cannot decide it. Two relations paired in
    ``no_relation_contrast`` get no relation contrast with each other (their direction contrasts stay).

    Args:
        phrasings: relation id -> phrasings with ``{s}`` and ``{o}``.
        names: relation id -> (subject, object) name pairs to fill them with; objects are shuffled across
            pairs of the relation so a sentence never simply repeats one memorised fact.
        per_relation: sentences per relation (phrasings drawn with replacement; contrasts included).
        negatives: phrasings of no relation, filled with names of any relation.
        n_negative: how many negative sentences.
        typo_rate: share of sentences given one typo outside the names (:func:`perturb`).
        clean_rate: share of sentences given as the interpreter cleans them (:func:`cleaned`).
        seed: the random seed (same inputs and seed -> same sentences).
        constructions: relation id -> phrasing -> its construction
            (:func:`agent.tell._reader_grammar.constructions`); none: phrasings drawn uniformly.
        contrast: relations whose names fit either way round and each other's phrasings (two people).
        contrast_rate: the chance of each contrast sentence after a sentence of a ``contrast`` relation.
        no_relation_contrast: pairs of relations never contrasted with each other (e.g.
            :data:`NO_RELATION_CONTRAST`: each other's inverses).
    """
    rng = random.Random(seed)
    out: list[Example] = []

    def finish(ex: Example) -> Example:
        if typo_rate and rng.random() < typo_rate:
            ex = perturb(ex, rng)
        if rng.random() < clean_rate:
            ex = cleaned(ex) or ex
        return ex

    groups = {
        r: _by_construction(ps, constructions.get(r, {})) if constructions is not None else [list(ps)]
        for r, ps in phrasings.items()
    }

    def draw(relation: str) -> str:
        return rng.choice(rng.choice(groups[relation]))

    def sentence(relation: str, phrasing: str, subject: str, obj: str, prefix: str, suffix: str) -> Example:
        ex = render(phrasing, subject, obj, prefix, suffix)
        return finish(Example(ex.text, relation, ex.subject, ex.object))

    partners = [r for r in sorted(contrast) if phrasings.get(r) and names.get(r)]
    # a phrasing two of them share states either ("{s} was born to {o}": father or mother)
    shared = {
        r: {p: o for o in reversed(partners) if o != r for p in set(phrasings[r]) & set(phrasings[o])} for r in partners
    }

    def emit(relation: str, phrasing: str, subject: str, obj: str, prefix: str, suffix: str) -> int:
        """Append the sentence (and its twin for a shared phrasing: the same text, the other label, so that
        the names cannot tell which relation it is); how many sentences were appended."""
        out.append(sentence(relation, phrasing, subject, obj, prefix, suffix))
        twin = shared.get(relation, {}).get(phrasing)
        if twin is None:
            return 1
        out.append(replace(out[-1], relation=twin))
        return 2

    for relation in sorted(phrasings):
        pairs = list(names.get(relation, ()))
        if not pairs or not phrasings[relation]:
            continue
        objects = [o for _, o in pairs]
        swaps = relation in partners
        others = [r for r in partners if r != relation and frozenset((r, relation)) not in no_relation_contrast]
        others = others if swaps else []
        made = 0
        while made < per_relation:
            phrasing = draw(relation)
            subject = rng.choice(pairs)[0]
            obj = rng.choice(objects)
            prefix, suffix = rng.choice(_PREFIXES), rng.choice(_SUFFIXES)
            made += emit(relation, phrasing, subject, obj, prefix, suffix)
            if swaps and made < per_relation and rng.random() < contrast_rate:
                made += emit(relation, phrasing, obj, subject, prefix, suffix)  # the other way round
            if others and made < per_relation and rng.random() < contrast_rate:
                other = rng.choice(others)
                made += emit(other, draw(other), subject, obj, prefix, suffix)  # another relation
    everyone = [name for r in sorted(names) for pair in names[r] for name in pair]
    for _ in range(n_negative if negatives and everyone else 0):
        ex = render(rng.choice(negatives), rng.choice(everyone), rng.choice(everyone), rng.choice(_PREFIXES))
        out.append(finish(Example(ex.text, NONE, (0, 0), (0, 0))))
    return out
