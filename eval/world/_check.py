"""``factagent world check``: what a reference model knows, and whether it reads its context.

Every figure is greedy generation scored by normalised exact match of the object, over every fact of the
split (or an evenly spaced sample of ``limit`` facts, for probes during training):

* ``known_train``   KNOWN facts, training templates (one cloze and one question per fact);
* ``known_heldout`` KNOWN facts, held-out question paraphrases never seen in training (each per fact);
* ``known_heldout_cloze`` KNOWN facts, one held-out cloze paraphrase per fact (for the Wikidata relations,
  Pitfalls' paraphrases such as "The one in a matrimonial relationship with {} is"); reported beside;
* ``unknown``       UNKNOWN facts closed-book (should be low; ``majority_baseline`` is what guessing the most
  common object of the relation scores);
* ``context_unknown``        UNKNOWN facts with the gold sentence and 3 distractors in context;
* ``context_counterfactual`` KNOWN facts with a sentence contradicting memory and 3 distractors in context;
  the answer must follow the context.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from eval._normalize import exact_match
from eval.world._build import fill, stable_unit
from eval.world._examples import statement
from eval.world._schema import Fact, World
from tools.lm import LanguageModel, PromptFormat


@dataclass(frozen=True)
class Probe:
    """One prompt of the check with its gold answer."""

    metric: str
    prompt: str
    answer: str
    relation: str


def _pick(seq: Sequence[str], key: str) -> str:
    return seq[int(stable_unit(key) * len(seq))]


def _spread(facts: list[Fact], limit: int | None) -> list[Fact]:
    if not limit or limit >= len(facts):
        return facts
    step = len(facts) / limit
    return [facts[int(i * step)] for i in range(limit)]


def build_probes(world: World, fmt: PromptFormat, limit: int | None = None) -> list[Probe]:
    """All probes of the check, prompted in ``fmt`` (``limit`` facts per metric when given)."""
    rel = {r.id: r for r in world.relations}
    known, unknown = _spread(world.facts_in("known"), limit), _spread(world.facts_in("unknown"), limit)
    docs = {d.fact_id: d.text for d in world.documents}
    by_rel: dict[str, list[Fact]] = defaultdict(list)
    for f in world.facts:
        by_rel[f.relation].append(f)
    new_object = {e.fact_id: e.new_object for e in world.edits}
    probes: list[Probe] = []

    def closed(metric: str, fact: Fact, cloze: str, question: str) -> None:
        probes.append(Probe(metric, fill(cloze, fact.subject), fact.object, fact.relation))
        probes.append(Probe(metric, fmt.question(fill(question, fact.subject)), fact.object, fact.relation))

    for f in known:
        r = rel[f.relation]
        closed("known_train", f, _pick(r.cloze, f.id + "c"), _pick(r.questions, f.id + "q"))
        for template in (t for t in r.heldout if t.endswith("?")):
            probes.append(Probe("known_heldout", fmt.question(fill(template, f.subject)), f.object, f.relation))
        held_cloze = [t for t in r.heldout if not t.endswith("?")]
        if held_cloze:
            prompt = fill(_pick(held_cloze, f.id + "hc"), f.subject)
            probes.append(Probe("known_heldout_cloze", prompt, f.object, f.relation))
    for f in unknown:
        r = rel[f.relation]
        closed("unknown", f, _pick(r.cloze, f.id + "c"), _pick(r.questions, f.id + "q"))
    for f in unknown:
        sentences = [docs[f.id], *_distractor_docs(world, f, by_rel, docs)]
        random.Random(f.id).shuffle(sentences)
        q = fill(_pick(rel[f.relation].questions, f.id + "q"), f.subject)
        probes.append(Probe("context_unknown", fmt.with_context(sentences, q), f.object, f.relation))
    for f in known:
        r = rel[f.relation]
        target = new_object.get(f.id) or _other(by_rel[f.relation], f, f.id)
        stated = statement(r, f.subject, target, int(stable_unit(f.id, "s") * 2))
        sentences = [stated, *_distractor_docs(world, f, by_rel, docs)]
        random.Random(f.id).shuffle(sentences)
        q = fill(_pick(r.questions, f.id + "q"), f.subject)
        probes.append(Probe("context_counterfactual", fmt.with_context(sentences, q), target, f.relation))
    return probes


def _other(facts: list[Fact], fact: Fact, key: str) -> str:
    objects = sorted({f.object for f in facts} - {fact.object})
    return _pick(objects, key + "cf")


def _distractor_docs(world: World, fact: Fact, by_rel: dict[str, list[Fact]], docs: dict[str, str]) -> list[str]:
    """One document of the same relation (another subject) and two random documents."""
    rng = random.Random(fact.id + "distractors")
    same = [f for f in by_rel[fact.relation] if f.subject != fact.subject]
    others = [f for f in world.facts if f.subject != fact.subject and f.relation != fact.relation] or same
    return [docs[rng.choice(same).id], docs[rng.choice(others).id], docs[rng.choice(others).id]]


def majority_baseline(world: World) -> dict[str, float]:
    """Per relation: accuracy on UNKNOWN facts of always answering the most common KNOWN object.

    The key ``"overall"`` holds the same over all UNKNOWN facts (relations weighted by their size).
    """
    out: dict[str, float] = {}
    hits = total = 0
    for r in world.relations:
        known = Counter(f.object for f in world.facts_in("known") if f.relation == r.id)
        unknown = [f for f in world.facts_in("unknown") if f.relation == r.id]
        if known and unknown:
            top = known.most_common(1)[0][0]
            right = sum(f.object == top for f in unknown)
            out[r.id] = right / len(unknown)
            hits, total = hits + right, total + len(unknown)
    out["overall"] = hits / max(1, total)
    return out


def run_check(
    lm: LanguageModel, world: World, limit: int | None = None, batch_size: int = 64
) -> dict[str, float | int]:
    """Score ``lm`` on every probe; returns the figures named in the module docstring."""
    probes = build_probes(world, lm.prompt_format, limit=limit)
    gens = lm.generate([p.prompt for p in probes], max_new_tokens=24)
    hits: dict[str, list[bool]] = defaultdict(list)
    for probe, gen in zip(probes, gens, strict=True):
        hits[probe.metric].append(exact_match(gen.text, (probe.answer,)))
    result: dict[str, float | int] = {m: round(sum(v) / len(v), 4) for m, v in hits.items()}
    result["n_known"] = len(_spread(world.facts_in("known"), limit))
    result["n_unknown"] = len(_spread(world.facts_in("unknown"), limit))
    return result
