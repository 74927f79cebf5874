"""What one reader sees of the knowledge graph: :class:`GraphView`, its reads restricted to some namespaces."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from kg._conflicts import Conflict
from kg._records import Assertion, Entity
from kg._schema import Schema
from tools.base import Triple

if TYPE_CHECKING:
    from kg._graph import KnowledgeGraph

__all__ = ["GraphView"]


class GraphView:
    """What one reader sees of a :class:`KnowledgeGraph`: its reads restricted to ``namespaces``.

    The reads have the graph's signatures and contracts, with ``namespaces`` fixed (see
    :meth:`KnowledgeGraph.facts` for the order of precedence): facts, history, multi-hop objects, conflicts,
    and entities with only the names (labels, aliases) written in those namespaces.
    """

    def __init__(self, graph: KnowledgeGraph, namespaces: Sequence[str]) -> None:
        self.graph = graph
        self.namespaces = tuple(namespaces)

    @property
    def schema(self) -> Schema:
        return self.graph.schema

    def facts(
        self,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
        *,
        as_of: datetime | None = None,
    ) -> list[Assertion]:
        return self.graph.facts(subject, relation, obj, as_of=as_of, namespaces=self.namespaces)

    def history(self, subject: str, relation: str | None = None) -> list[Assertion]:
        return self.graph.history(subject, relation, namespaces=self.namespaces)

    def objects(self, subject: str, path: Sequence[str], *, as_of: datetime | None = None) -> list[Entity]:
        return self.graph.objects(subject, path, as_of=as_of, namespaces=self.namespaces)

    def get_entity(self, iri: str) -> Entity:
        return self.graph.get_entity(iri, namespaces=self.namespaces)

    def entities(self) -> Iterator[Entity]:
        return self.graph.entities(self.namespaces)

    def conflicts(
        self, triple: Triple, *, as_of: datetime | None = None, single_valued: bool = False
    ) -> list[Conflict]:
        return self.graph.conflicts(triple, as_of=as_of, single_valued=single_valued, namespaces=self.namespaces)
