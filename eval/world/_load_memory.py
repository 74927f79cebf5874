"""Loading the reference world into the working memory: documents into the vector memory, facts into the KG.

The world's concepts (class hierarchy, definitions, instance-of facts) go into the KG too, once per home, so
the agent's concept desk answers "What is a <concept>?" and "Is X a <concept>?" from them; and the KG's
countries get their Chinese names (``eval/world/_zh_names.py``).

By default only the UNKNOWN facts go in (their corpus sentences and triples): ARCHITECTURE.md's benchmark
setting, where the model is the only source for KNOWN facts. ``include_known=True`` loads everything.
Each batch is one transaction over both stores (they share one SQLite file), so an interrupted load leaves
whole batches, never a memory item without its KG assertion. Given the agent's tell pipeline (as the CLI
does), a load goes through its bulk door (``TellPipeline.load``): one edit per load in the edit log, written
by the trusted source ``world``, that ``rollback`` undoes whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from eval.world._zh_names import name_world_entities_zh
from kg import KnowledgeGraph, Provenance
from memory import Scope, Triple, VectorMemory

if TYPE_CHECKING:
    from agent.tell import TellPipeline
    from eval.world._schema import Document, Fact, World
    from memory import Database

__all__ = ["WORLD_SCOPE", "LoadReport", "load_world_into", "world_documents"]

logger = logging.getLogger(__name__)

WORLD_SCOPE = Scope(agent_id="world")  # the namespace the world's documents live in
T = TypeVar("T")


@dataclass(frozen=True)
class LoadReport:
    """What a load wrote."""

    documents: int
    assertions: int
    skipped: int  # already present (a second load is a no-op)
    edit_id: str | None = None  # the load's edit (through a pipeline), for rollback
    concepts: int = 0  # KG assertions of the world's concepts written (edit ``world-concepts``)
    zh_names: int = 0  # KG entities given their Chinese name now (``eval/world/_zh_names.py``)


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def world_documents(world: World, *, include_known: bool = False) -> list[Document]:
    """The documents a load writes, UNKNOWN facts' first (then KNOWN ones with ``include_known``).

    The order is fixed so that a load without KNOWN facts is a prefix of one with them: a later
    ``include_known`` load, or a load resumed after an interruption, continues where the last one stopped.
    """
    split = {f.id: f.split for f in world.facts}
    unknown = [d for d in world.documents if split[d.fact_id] == "unknown"]
    known = [d for d in world.documents if split[d.fact_id] != "unknown"] if include_known else []
    return unknown + known


def load_world_into(
    world: World,
    db: Database,
    memory: VectorMemory,
    graph: KnowledgeGraph,
    *,
    include_known: bool = False,
    scope: Scope = WORLD_SCOPE,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
    pipeline: TellPipeline | None = None,
    include_concepts: bool = True,
    include_zh_names: bool = True,
) -> LoadReport:
    """Write the world's documents (vector memory) and triples (KG), batch by batch.

    Args:
        world: the loaded reference world.
        db: the database both stores write to (one transaction per batch).
        memory: the vector memory; documents go in with their triple, ``source="world:<doc id>"`` and
            ``metadata={"doc_id", "fact_id", "split"}``.
        graph: the knowledge graph; each fact is asserted by ``who="world"`` with ``source=<doc id>``.
        include_known: also load KNOWN facts (default: UNKNOWN only).
        scope: the namespace of the documents.
        progress: called with the number of documents in each finished batch (a progress bar's update).
        pipeline: the tell pipeline over these stores: the load is then one logged edit (see the module
            docstring). Without it the stores are written directly (bare stores of evaluation harnesses,
            with no edit log).
        include_concepts: also write the world's concepts (definitions, subclass links, instance-of facts) to
            the KG, once, under the edit ``world-concepts`` (:func:`eval.world._concept_rows.load_world_concepts`).
        include_zh_names: also give the KG's countries their Chinese names (``@zh`` labels and aliases, from the
            Chinese slice's table of countries; :func:`eval.world._zh_names.name_world_entities_zh`), so Chinese
            questions link to them and KG answers to Chinese questions name them in Chinese. An entity index
            built before the load (``WorkingMemory.refresh_entities``) must be refreshed to see the new aliases.

    Returns:
        counts of documents and assertions written and of documents skipped as already loaded.
    """
    facts: dict[str, Fact] = {f.id: f for f in world.facts}
    wanted = world_documents(world, include_known=include_known)
    # Batches commit whole and in a fixed order, so the scope's item count says how far a previous load got
    # (the world scope belongs to the loader; nothing else writes there).
    loaded = memory.count(scope=scope) if scope in memory.scopes() else 0
    todo: list[Document] = wanted[loaded:]
    documents = assertions = 0
    edit_id: str | None = None
    for batch in _batches(todo, batch_size):
        triples = [Triple(facts[d.fact_id].subject, facts[d.fact_id].relation, facts[d.fact_id].object) for d in batch]
        if pipeline is not None:
            from agent.tell import BulkFact

            done = pipeline.load(
                [
                    BulkFact(
                        text=d.text,
                        triple=t,
                        source=f"world:{d.id}",
                        metadata={"doc_id": d.id, "fact_id": d.fact_id, "split": facts[d.fact_id].split},
                        kg_source=d.id,
                    )
                    for t, d in zip(triples, batch, strict=True)
                ],
                who="world",
                namespace=scope.agent_id or "world",
                edit_id=edit_id,
                text=f"world load ({len(todo)} documents)",
            )
            edit_id, assertions = done.edit_id, assertions + done.assertions
            documents += len(batch)
            if progress is not None:
                progress(len(batch))
            continue
        with db.transaction():
            memory.add_many(
                [d.text for d in batch],
                scope=scope,
                triples=triples,
                sources=[f"world:{d.id}" for d in batch],
                metadatas=[{"doc_id": d.id, "fact_id": d.fact_id, "split": facts[d.fact_id].split} for d in batch],
            )
            assertions += graph.add_many(
                (t, Provenance(who="world", source=d.id)) for t, d in zip(triples, batch, strict=True)
            )
        documents += len(batch)
        if progress is not None:
            progress(len(batch))
    skipped = len(wanted) - len(todo)
    concepts = 0
    if include_concepts:
        from eval.world._concept_rows import load_world_concepts

        concepts = load_world_concepts(world, graph)
    zh_names = name_world_entities_zh(graph) if include_zh_names else 0
    logger.info("loaded %d documents and %d assertions (%d already there)", documents, assertions, skipped)
    return LoadReport(
        documents=documents,
        assertions=assertions,
        skipped=skipped,
        edit_id=edit_id,
        concepts=concepts,
        zh_names=zh_names,
    )
