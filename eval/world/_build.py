"""Build the reference world from the bundled source data, deterministically from a seed.

Splits:

* KNOWN / UNKNOWN facts: a seeded hash of the fact's key, where the key of a relation with an inverse is the
  unordered entity pair, so a fact and its reverse always fall on the same side (an UNKNOWN fact is never
  taught through its reverse);
* EDITS: counterfactual objects (another object of the same relation) for a sample of KNOWN facts;
* UNANSWERABLE: invented entities (syllable names) and real subjects asked about a relation the world has
  no fact for;
* questions: ``dev`` / ``test`` by a seeded hash of the fact (calibration only ever sees ``dev``).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import defaultdict
from dataclasses import dataclass

from eval.world._names import syllable_name
from eval.world._schema import (
    Document,
    Edit,
    Fact,
    FactSplit,
    Prompt,
    Question,
    QuestionKind,
    QuestionSplit,
    Relation,
    TemplateKind,
    World,
)
from eval.world._source import load_relations, read_pairs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and seed of a world build."""

    seed: int = 1234
    facts_per_relation: int = 200  # cap per relation before the known/unknown split
    unknown_fraction: float = 1 / 3
    n_edits: int = 600
    n_neighbours: int = 5  # neighbourhood prompts per edit
    n_paraphrases: int = 4  # paraphrase prompts per edit
    n_unanswerable_invented: int = 300
    n_unanswerable_missing: int = 200
    dev_fraction: float = 0.3


def stable_unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts`` (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def fill(template: str, subject: str) -> str:
    """Put ``subject`` into a one-slot template."""
    return template.replace("{}", subject, 1)


def build_world(config: WorldConfig | None = None) -> World:
    """Build the whole world in memory (no file I/O besides reading the bundled sources)."""
    config = config or WorldConfig()
    relations = load_relations()
    facts = _facts(relations, config)
    edits = _edits(relations, facts, config)
    documents = tuple(_document(relations, f) for f in facts)
    questions = _questions(relations, facts, edits, config)
    from eval.world._slices import build_slices  # slices build on this module's helpers

    slices = build_slices(facts, config)
    manifest = {
        "seed": config.seed,
        "counts": {
            "relations": len(relations),
            "known": sum(f.split == "known" for f in facts),
            "unknown": sum(f.split == "unknown" for f in facts),
            "edits": len(edits),
            "questions": len(questions),
            "documents": len(documents),
        },
        "slices": slices.counts,
        "sources": [
            "LRE (zjunlp/KnowledgeCircuits data/, MIT)",
            "PitfallsKnowledgeEditing (zjunlp, MIT)",
            "chinese-xinhua (pwxcoo, MIT), chinese-poetry (MIT): eval/world/source/zh/SOURCES.md",
        ],
    }
    logger.info("built world: %s", manifest["counts"])
    return World(
        relations=relations,
        facts=facts,
        edits=edits,
        questions=questions,
        documents=documents,
        manifest=manifest,
        concepts=slices.concepts,
        slice_facts=slices.facts,
        slice_edits=slices.edits,
        slice_questions=slices.questions,
    )


def _facts(specs: tuple[Relation, ...], config: WorldConfig) -> tuple[Fact, ...]:
    facts: list[Fact] = []
    for spec in specs:
        pairs = read_pairs(spec)
        rng = random.Random(f"{config.seed}:{spec.id}")
        rng.shuffle(pairs)
        for subject, obj in sorted(pairs[: config.facts_per_relation]):
            key = "|".join(sorted((subject, obj))) if spec.inverse or spec.id == "spouse" else f"{spec.id}|{subject}"
            split: FactSplit = (
                "unknown" if stable_unit(config.seed, "split", key) < config.unknown_fraction else "known"
            )
            facts.append(Fact(id="", relation=spec.id, subject=subject, object=obj, split=split))
    facts = _drop_near_duplicates(facts)
    return tuple(
        Fact(id=f"f{i:05d}", relation=f.relation, subject=f.subject, object=f.object, split=f.split)
        for i, f in enumerate(facts)
    )


def _drop_near_duplicates(facts: list[Fact]) -> list[Fact]:
    """Drop UNKNOWN facts that a KNOWN fact already states under a variant name.

    The sources name some entities twice ("Beyoncé" / "Beyoncé Knowles", "Meta" / "Meta Platforms"); an
    UNKNOWN fact whose object a KNOWN fact of the same relation gives to an overlapping subject would be
    taught through it.
    """
    known: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in facts:
        if f.split == "known":
            known[(f.relation, f.object)].append(f.subject)

    def overlaps(f: Fact) -> bool:
        return any(f.subject in s or s in f.subject for s in known.get((f.relation, f.object), []))

    return [f for f in facts if f.split == "known" or not overlaps(f)]


def _edits(relations: tuple[Relation, ...], facts: tuple[Fact, ...], config: WorldConfig) -> tuple[Edit, ...]:
    by_rel: dict[str, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_rel[fact.relation].append(fact)
    rel = {r.id: r for r in relations}
    rng = random.Random(f"{config.seed}:edits")
    known = [f for f in facts if f.split == "known"]
    chosen = sorted(rng.sample(known, k=min(config.n_edits, len(known))), key=lambda f: f.id)
    edits = []
    for i, fact in enumerate(chosen):
        pool = sorted({f.object for f in by_rel[fact.relation]} - {fact.object})
        edits.append(
            counterfactual_edit(f"e{i:04d}", fact, rel[fact.relation], by_rel[fact.relation], pool, rng, config)
        )
    return tuple(edits)


def counterfactual_edit(
    edit_id: str,
    fact: Fact,
    relation: Relation,
    same_relation: list[Fact],
    pool: list[str],
    rng: random.Random,
    config: WorldConfig,
) -> Edit:
    """An edit of ``fact`` to an object drawn from ``pool``, with held-out paraphrases and KNOWN neighbours.

    Draws from ``rng`` in a fixed order (neighbours, then the new object), so a world is the same build to build.
    """
    neighbours = [f for f in same_relation if f.split == "known" and f.subject != fact.subject]
    picked = rng.sample(neighbours, k=min(config.n_neighbours, len(neighbours)))
    paraphrases = [fill(t, fact.subject) for t in relation.heldout][: config.n_paraphrases]
    paraphrases += [fill(t, fact.subject) for t in relation.cloze[1:]][
        : max(0, config.n_paraphrases - len(paraphrases))
    ]
    return Edit(
        id=edit_id,
        fact_id=fact.id,
        relation=fact.relation,
        subject=fact.subject,
        old_object=fact.object,
        new_object=rng.choice(pool),
        prompt=fill(relation.cloze[0], fact.subject),
        paraphrases=tuple(paraphrases),
        neighbourhood=tuple(Prompt(text=fill(relation.cloze[0], n.subject), answer=n.object) for n in picked),
    )


def _document(relations: tuple[Relation, ...], fact: Fact) -> Document:
    rel = next(r for r in relations if r.id == fact.relation)
    template = rel.statements[int(stable_unit("doc", fact.id) * len(rel.statements))]
    return Document(id=f"d{fact.id[1:]}", fact_id=fact.id, text=template.format(fact.subject, fact.object))


class _Questions:
    """Accumulates questions with sequential ids and a seeded dev/test split by key."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.items: list[Question] = []

    def split_of(self, key: str) -> QuestionSplit:
        return "dev" if stable_unit(self.config.seed, "qsplit", key) < self.config.dev_fraction else "test"

    def add(
        self,
        kind: QuestionKind,
        key: str,
        text: str,
        answers: tuple[str, ...],
        relation: str,
        subject: str,
        template: TemplateKind,
        fact_id: str | None = None,
        edit_id: str | None = None,
    ) -> None:
        self.items.append(
            Question(
                id=f"q{len(self.items):05d}",
                kind=kind,
                split=self.split_of(key),
                text=text,
                answers=answers,
                relation=relation,
                subject=subject,
                fact_id=fact_id,
                edit_id=edit_id,
                template=template,
            )
        )


def _heldout_questions(relation: Relation) -> list[str]:
    return [t for t in relation.heldout if t.endswith("?")] or list(relation.heldout)


def _questions(
    relations: tuple[Relation, ...], facts: tuple[Fact, ...], edits: tuple[Edit, ...], config: WorldConfig
) -> tuple[Question, ...]:
    rel = {r.id: r for r in relations}
    edited = {e.fact_id for e in edits}
    qs = _Questions(config)
    for fact in facts:
        if fact.id in edited:
            continue  # an edited fact is asked about as an edit question only
        r = rel[fact.relation]
        kind: QuestionKind = fact.split
        question = fill(r.questions[int(stable_unit("qt", fact.id) * len(r.questions))], fact.subject)
        qs.add(kind, fact.id, question, (fact.object,), r.id, fact.subject, "train", fact.id)
        held = _heldout_questions(r)
        question = fill(held[int(stable_unit("qh", fact.id) * len(held))], fact.subject)
        qs.add(kind, fact.id, question, (fact.object,), r.id, fact.subject, "heldout", fact.id)
    for edit in edits:
        r = rel[edit.relation]
        answers = (edit.new_object,)
        qs.add(
            "edit",
            edit.fact_id,
            fill(r.questions[0], edit.subject),
            answers,
            r.id,
            edit.subject,
            "train",
            edit.fact_id,
            edit.id,
        )
        qs.add(
            "edit",
            edit.fact_id,
            fill(_heldout_questions(r)[0], edit.subject),
            answers,
            r.id,
            edit.subject,
            "heldout",
            edit.fact_id,
            edit.id,
        )
    _unanswerable(relations, facts, config, qs)
    return tuple(qs.items)


# relations of people: an unanswerable question asks one of them about a person who has no such fact
PERSON_RELATIONS = (
    "person_father",
    "person_mother",
    "person_native_language",
    "person_occupation",
    "spouse",
    "doctoral_advisor",
    "person_university",
)


def _unanswerable(
    relations: tuple[Relation, ...], facts: tuple[Fact, ...], config: WorldConfig, qs: _Questions
) -> None:
    """Invented entities (in no fact, no document) and real people asked about a relation they lack."""
    rng = random.Random(f"{config.seed}:unanswerable")
    taken = {f.subject for f in facts} | {f.object for f in facts}
    corpus_words = {w for name in taken for w in name.split()}
    invented = 0
    while invented < config.n_unanswerable_invented:
        name = syllable_name(rng)
        if name in taken or any(w in corpus_words for w in name.split()):
            continue
        taken.add(name)
        r = rng.choice(relations)
        qs.add("unanswerable", name, fill(rng.choice(r.questions), name), (), r.id, name, "train")
        invented += 1
    has = {(f.subject, f.relation) for f in facts}
    people = sorted({f.subject for f in facts if f.relation in PERSON_RELATIONS})
    person_relations = [x for x in relations if x.id in PERSON_RELATIONS]
    missing = 0
    while missing < config.n_unanswerable_missing:
        subject = rng.choice(people)
        r = rng.choice(person_relations)
        if (subject, r.id) in has:
            continue
        has.add((subject, r.id))
        qs.add("unanswerable", subject + r.id, fill(rng.choice(r.questions), subject), (), r.id, subject, "train")
        missing += 1


def subset_world(world: World, relations: tuple[str, ...], n_known: int, n_unknown: int = 0) -> World:
    """A small world over ``relations``: the first ``n_known`` KNOWN and ``n_unknown`` UNKNOWN facts,
    with their documents and questions (for micro-training in tests and quick trials)."""
    rels = tuple(r for r in world.relations if r.id in relations)
    known = _round_robin([f for f in world.facts if f.split == "known"], relations, n_known)
    unknown = _round_robin([f for f in world.facts if f.split == "unknown"], relations, n_unknown)
    facts = tuple(sorted(known + unknown, key=lambda f: f.id))
    ids = {f.id for f in facts}
    return World(
        relations=rels,
        facts=facts,
        edits=tuple(e for e in world.edits if e.fact_id in ids),
        questions=tuple(q for q in world.questions if q.fact_id in ids),
        documents=tuple(d for d in world.documents if d.fact_id in ids),
        manifest={**world.manifest, "subset": {"relations": list(relations), "known": n_known, "unknown": n_unknown}},
    )


def _round_robin(facts: list[Fact], relations: tuple[str, ...], n: int) -> list[Fact]:
    """The first ``n`` facts taking one relation after the other."""
    queues = {r: [f for f in facts if f.relation == r] for r in relations}
    out: list[Fact] = []
    while len(out) < n and any(queues.values()):
        for r in relations:
            if queues[r] and len(out) < n:
                out.append(queues[r].pop(0))
    return out
