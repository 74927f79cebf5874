"""Questions, gold answers and told edits of the agent benchmark, taken from the reference world."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from eval.world._schema import Edit, Question, World

__all__ = ["BenchQuestion", "edit_statement", "sample_questions", "statement"]


@dataclass(frozen=True)
class BenchQuestion:
    """A world question with the gold answers that hold once the world's edits are told."""

    question: Question
    gold: tuple[str, ...]  # empty: unanswerable

    @property
    def kind(self) -> str:
        return self.question.kind


def sample_questions(world: World, split: str, kinds: Sequence[str], per_kind: int, seed: int) -> list[BenchQuestion]:
    """The split's questions of ``kinds``: all of them, or a seeded sample of ``per_kind`` per kind."""
    out: list[BenchQuestion] = []
    rng = random.Random(seed)
    edits = {e.id: e for e in world.edits}
    for kind in kinds:
        pool = [q for q in world.questions if q.split == split and q.kind == kind]
        if per_kind and len(pool) > per_kind:
            pool = sorted(rng.sample(pool, per_kind), key=lambda q: q.id)
        for q in pool:
            gold = q.answers
            if q.kind == "edit" and q.edit_id in edits:
                gold = (edits[q.edit_id].new_object,)
            out.append(BenchQuestion(q, tuple(gold)))
    return out


def statement(world: World, relation: str, subject: str, obj: str) -> str:
    """A plain-English sentence stating (subject, relation, object), in the relation's first cloze phrasing."""
    spec = world.relation(relation)
    cloze = spec.cloze[0] if spec.cloze else "{} " + spec.label + " is"
    return f"{cloze.replace('{}', subject)} {obj}."


def edit_statement(world: World, edit: Edit) -> str:
    """How a user tells the agent one of the world's edits."""
    return statement(world, edit.relation, edit.subject, edit.new_object)
