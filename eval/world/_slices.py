"""Build the world's slices (concepts and Chinese): facts, edits and questions, appended after the English.

The English records and their ids are untouched: slices live in their own files
(:mod:`eval.world._slice_records`). Questions follow the English rules: for every slice fact that is not
edited, one training-template and one held-out question (kind = its split); two per edit (kind ``edit``,
gold = the new answer); UNANSWERABLE questions about invented concepts and invented Chinese names. ``dev`` /
``test`` by a seeded hash of the fact.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from eval.world._build import WorldConfig, stable_unit
from eval.world._concepts import article, build_concepts, concept_counts, concept_edits
from eval.world._names import syllable_name
from eval.world._schema import Fact, Question, QuestionKind, QuestionSplit, World
from eval.world._slice_records import Concept, Prompted, SliceEdit, SliceFact
from eval.world._zh import CATEGORIES, build_zh, invented_zh_questions


@dataclass(frozen=True)
class Slices:
    """Everything the slices add to a world."""

    concepts: tuple[Concept, ...]
    facts: tuple[SliceFact, ...]
    edits: tuple[SliceEdit, ...]
    questions: tuple[Question, ...]
    counts: dict[str, Any]


def build_slices(facts: tuple[Fact, ...], config: WorldConfig, n_zh_edits: int = 200) -> Slices:
    """Concepts and the Chinese slice for a world whose English facts are ``facts``."""
    concepts, concept_facts = build_concepts(facts, config)
    zh_facts = build_zh(facts, config)
    all_facts = concept_facts + zh_facts
    edits = concept_edits(concepts, concept_facts, config) + _zh_edits(zh_facts, config, n_zh_edits)
    questions = _questions(all_facts, edits, concepts, config)
    zh_counts: dict[str, Any] = {
        c: {s: sum(f.category == c and f.split == s for f in zh_facts) for s in ("known", "unknown")}
        for c in CATEGORIES
    }
    counts = {
        "concepts": concept_counts(concepts, concept_facts, edits),
        "zh": {**zh_counts, "edits": sum(e.slice == "zh" for e in edits)},
        "slice_questions": len(questions),
    }
    return Slices(concepts=concepts, facts=all_facts, edits=edits, questions=questions, counts=counts)


def _zh_edits(facts: tuple[SliceFact, ...], config: WorldConfig, n: int, n_locality: int = 5) -> tuple[SliceEdit, ...]:
    """Counterfactual answers (another item's answer of the same category) for a sample of KNOWN facts."""
    rng = random.Random(f"{config.seed}:zh-edits")
    known = [f for f in facts if f.split == "known"]
    by_category: dict[str, list[SliceFact]] = defaultdict(list)
    for f in facts:
        by_category[f.category].append(f)
    chosen = sorted(rng.sample(known, k=min(n, len(known))), key=lambda f: f.id)
    edits = []
    for i, fact in enumerate(chosen):
        answers = sorted({f.answer for f in by_category[fact.category]} - {fact.answer})
        neighbours = [f for f in by_category[fact.category] if f.split == "known" and f.subject != fact.subject]
        local = rng.sample(neighbours, k=min(n_locality, len(neighbours)))
        edits.append(
            SliceEdit(
                id=f"ze{i:04d}",
                fact_id=fact.id,
                slice="zh",
                category=fact.category,
                subject=fact.subject,
                old_answer=fact.answer,
                new_answer=rng.choice(answers),
                kind="counterfactual",
                source="",
                prompt=fact.cloze[0],
                paraphrases=fact.questions + fact.heldout,
                locality=tuple(Prompted(text=f.questions[0], answer=f.answer) for f in local),
            )
        )
    return tuple(edits)


def _questions(
    facts: tuple[SliceFact, ...], edits: tuple[SliceEdit, ...], concepts: tuple[Concept, ...], config: WorldConfig
) -> tuple[Question, ...]:
    counters: dict[str, int] = defaultdict(int)
    out: list[Question] = []

    def add(
        prefix: str, kind: QuestionKind, key: str, text: str, answers: tuple[str, ...], relation: str, subject: str,
        template: str, fact_id: str | None = None, edit_id: str | None = None,
    ) -> None:  # fmt: skip
        split: QuestionSplit = "dev" if stable_unit(config.seed, "slice-qsplit", key) < config.dev_fraction else "test"
        out.append(
            Question(
                id=f"{prefix}{counters[prefix]:05d}",
                kind=kind,
                split=split,
                text=text,
                answers=answers,
                relation=relation,
                subject=subject,
                fact_id=fact_id,
                edit_id=edit_id,
                template=template,  # type: ignore[arg-type]
            )
        )
        counters[prefix] += 1

    edited = {e.fact_id for e in edits}
    for f in facts:
        if f.id in edited:
            continue
        prefix, rel = ("cq" if f.slice == "concepts" else "zq"), f"{f.slice}:{f.category}"
        q = f.questions[int(stable_unit("sqt", f.id) * len(f.questions))]
        add(prefix, f.split, f.id, q, (f.answer,), rel, f.subject, "train", f.id)
        h = f.heldout[int(stable_unit("sqh", f.id) * len(f.heldout))]
        add(prefix, f.split, f.id, h, (f.answer,), rel, f.subject, "heldout", f.id)
    by_id = {f.id: f for f in facts}
    for e in edits:
        fact, prefix, rel = by_id[e.fact_id], ("cq" if e.slice == "concepts" else "zq"), f"{e.slice}:{e.category}"
        add(prefix, "edit", e.id, fact.questions[0], (e.new_answer,), rel, e.subject, "train", e.fact_id, e.id)
        add(prefix, "edit", e.id, fact.heldout[0], (e.new_answer,), rel, e.subject, "heldout", e.fact_id, e.id)
    rng = random.Random(f"{config.seed}:slice-unanswerable")
    taken = {c.label for c in concepts} | {f.subject for f in facts}
    words = {w for f in facts if f.language == "en" for w in f.statement.split()}
    invented = 0
    while invented < 60:
        name = syllable_name(rng, n_words=1).lower()
        if name in taken or name in words or name.capitalize() in words:
            continue
        taken.add(name)
        add("cq", "unanswerable", name, f"What is {article(name)} {name}?", (), "concepts:definition", name, "train")
        invented += 1
    zh = tuple(f for f in facts if f.language == "zh")
    for category, subject, text in invented_zh_questions(rng, zh, 150):
        add("zq", "unanswerable", subject, text, (), f"zh:{category}", subject, "train")
    return tuple(out)


def with_slice_subset(world: World, source: World, per_category: int, unknown_per_category: int = 0) -> World:
    """``world`` with the first ``per_category`` KNOWN and ``unknown_per_category`` UNKNOWN slice facts of
    every category of ``source`` (and their edits and questions): micro-training in tests and quick trials."""
    picked: list[SliceFact] = []
    for category in dict.fromkeys(f.category for f in source.slice_facts):
        mine = [f for f in source.slice_facts if f.category == category]
        picked += [f for f in mine if f.split == "known"][:per_category]
        picked += [f for f in mine if f.split == "unknown"][:unknown_per_category]
    ids = {f.id for f in picked}
    facts = tuple(f for f in source.slice_facts if f.id in ids)
    return replace(
        world,
        concepts=source.concepts,
        slice_facts=facts,
        slice_edits=tuple(e for e in source.slice_edits if e.fact_id in ids),
        slice_questions=tuple(q for q in source.slice_questions if q.fact_id in ids),
    )
