"""How consistently the agent's KG path answers instance-of questions after a concept's definition is edited.

For each of the world's concept edits (``C`` takes the definition of ``D``), on a knowledge graph holding the
world's concepts (``eval.concepts.world_concept_rows``):

1. a trusted user tells the concept desk "A <C> is <D's definition>." (parsed, written to the KG with an edit id;
   the conflicts the desk reports are recorded);
2. "Is X a <C>?" is asked in English for every probe entity X — the instances and non-instances the world
   lists for ``C`` and for ``D`` — and the answer is *consistent* when it says yes exactly for the members of
   ``D`` (the world's instances of ``D`` and of its subclasses: the edited definition now describes ``D``); an
   "I don't know" counts as inconsistent;
3. the edit is rolled back, and the graph's quads must equal those before it.

The same questions asked before the edit are checked against ``C``'s own members (the baseline).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent import ConceptDesk
from eval.concepts._world import expected_members, world_concept_edits, world_concept_rows
from kg import KnowledgeGraph, MemoryTripleStore, Provenance, load_schema

__all__ = ["ConceptConsistency", "check_concept_consistency"]

logger = logging.getLogger(__name__)


def _article(label: str) -> str:
    return "an" if label[:1].lower() in "aeiou" else "a"


@dataclass(frozen=True)
class ConceptConsistency:
    """Instance-of answers of the KG path against the membership the definition implies.

    Attributes:
        edits: definition edits told.
        questions: instance-of questions asked after the edits.
        consistent: answers that agree with the edited definition.
        unknown: questions answered "I don't know" (counted as inconsistent).
        baseline_consistent: answers before the edits that agree with the original definitions (same questions).
        conflicts_reported: edits for which the desk reported at least one conflict.
        conflicts_expected: edits where some stored instance of the concept is not a member of the new one.
        rollbacks_exact: edits whose rollback left the graph's quads exactly as before.
    """

    edits: int
    questions: int
    consistent: int
    unknown: int
    baseline_consistent: int
    conflicts_reported: int
    conflicts_expected: int
    rollbacks_exact: int

    @property
    def rate(self) -> float:
        return self.consistent / self.questions if self.questions else 0.0

    @property
    def baseline_rate(self) -> float:
        return self.baseline_consistent / self.questions if self.questions else 0.0


def check_concept_consistency(
    data_dir: str | Path, *, limit: int | None = None, on_edit: Callable[[int], None] | None = None
) -> ConceptConsistency:
    """Run the check of the module docstring over the first ``limit`` world concept edits (default all)."""
    rows = world_concept_rows(data_dir)
    members = expected_members(rows)
    listed = {r.label: r for r in rows}
    graph = KnowledgeGraph(MemoryTripleStore(), load_schema())
    desk = ConceptDesk(graph, trusted={"admin"})
    desk.concepts.load([r.as_tuple() for r in rows], Provenance("world:load", edit_id="world-concepts"))
    edits = world_concept_edits(data_dir)[:limit]
    counts = dict.fromkeys(("questions", "consistent", "unknown", "baseline", "reported", "expected", "exact"), 0)
    for edit in edits:
        c, d = edit.concept, edit.source
        probes = sorted(
            set(listed[c].instances)
            | set(listed[d].instances)
            | set(listed[c].non_instances)
            | set(listed[d].non_instances)
        )
        questions = [f"Is {x} {_article(c)} {c}?" for x in probes]
        before = graph.store.quads(None, None, None, None)
        for x, q in zip(probes, questions, strict=True):
            a = desk.answer(q)
            counts["baseline"] += a is not None and a.answer == (x in members[c])
        told = desk.tell(f"{_article(c).capitalize()} {c} is {edit.definition}.", user="admin")
        counts["reported"] += bool(told.conflicts)
        counts["expected"] += bool(members[c] - members[d])
        for x, q in zip(probes, questions, strict=True):
            a = desk.answer(q)
            counts["questions"] += 1
            counts["unknown"] += a is None or a.answer is None
            counts["consistent"] += a is not None and a.answer == (x in members[d])
        desk.rollback(str(told.edit_id))  # applied: a trusted user's definition always has an edit id
        counts["exact"] += set(graph.store.quads(None, None, None, None)) == set(before)
        if on_edit is not None:
            on_edit(1)
    return ConceptConsistency(
        edits=len(edits),
        questions=counts["questions"],
        consistent=counts["consistent"],
        unknown=counts["unknown"],
        baseline_consistent=counts["baseline"],
        conflicts_reported=counts["reported"],
        conflicts_expected=counts["expected"],
        rollbacks_exact=counts["exact"],
    )
