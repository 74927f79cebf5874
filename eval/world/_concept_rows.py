"""The world's concepts as knowledge-graph rows, and their load into a working memory's KG.

:func:`concept_rows` gives, for every concept of ``world.concepts`` (parents before children), its label, its
parent's label, its definition, the instances to store and the non-instances the world lists. The stored
instances are the concept's sampled instances plus every entity the world names as a non-instance of some
concept, under the concepts whose rule makes it a member (its own class: "Alphabet Inc." is a company), so
that "Is Alphabet Inc. a place?" has a stored class to answer "no" from.

:func:`load_world_concepts` writes them to a KG (``kg.ConceptGraph.load``) under the one edit id
:data:`CONCEPTS_EDIT`, asserted by the trusted source ``world`` in the shared world namespace; a second load
is a no-op.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from eval.world._concepts import _Members, load_specs

if TYPE_CHECKING:
    from eval.world._schema import World
    from kg import KnowledgeGraph

__all__ = ["CONCEPTS_EDIT", "ConceptKGRow", "concept_rows", "load_world_concepts"]

logger = logging.getLogger(__name__)

CONCEPTS_EDIT = "world-concepts"  # the edit id of the world's concepts in a KG (``graph.rollback`` undoes them)

ConceptKGRow = tuple[str, str | None, str, tuple[str, ...], tuple[str, ...]]
"""``(label, parent label, definition, instances, non_instances)``."""


def concept_rows(world: World) -> list[ConceptKGRow]:
    """Every concept of ``world`` with the instances to store (module docstring), in file order."""
    if not world.concepts:
        return []
    label = {c.id: c.label for c in world.concepts}
    members = _Members(load_specs(), tuple(world.facts))
    named = {e for c in world.concepts for e in c.non_instances}
    rows: list[ConceptKGRow] = []
    for c in world.concepts:
        own = {e for e in members.own.get(c.id, {}) if e in named}
        instances = tuple(sorted(set(c.instances) | own))
        parent = label[c.parent] if c.parent else None
        rows.append((c.label, parent, c.definition, instances, tuple(c.non_instances)))
    return rows


def load_world_concepts(world: World, graph: KnowledgeGraph) -> int:
    """Write the world's concepts to ``graph`` unless they are there; returns the assertions written.

    Raises:
        InvalidDefinitionError, HierarchyCycleError: bad concept data (nothing is written).
    """
    from kg import ConceptGraph, Provenance

    rows = concept_rows(world)
    if not rows or graph.assertions_for_edit(CONCEPTS_EDIT):
        return 0
    written = ConceptGraph(graph).load(
        [(label, parent, definition, instances) for label, parent, definition, instances, _ in rows],
        Provenance(who="world", source="concepts.jsonl", edit_id=CONCEPTS_EDIT),
    )
    logger.info("loaded %d concepts (%d assertions)", len(rows), written)
    return written
