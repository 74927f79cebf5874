"""Value records of the knowledge graph: entities, assertions with provenance, the result of an add."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tools.base import Triple

__all__ = ["WORLD_NAMESPACE", "AddResult", "Assertion", "Entity", "Provenance"]

WORLD_NAMESPACE = "world"
"""The shared namespace of the reference world; assertions stored without a namespace (loaded before the KG
was namespaced, or added with ``Provenance.namespace=None``) belong to it."""


@dataclass(frozen=True)
class Provenance:
    """Who asserted a fact, from what, and as part of which edit.

    Attributes:
        who: the agent or user responsible (``"user:alice"``, ``"world:load"``).
        source: where it came from (a document id, a URL), if known.
        edit_id: the edit (a ``tell``) it belongs to; ``KnowledgeGraph.rollback(edit_id)`` undoes it.
        namespace: the tenant namespace the assertion belongs to (``None``: the shared
            :data:`WORLD_NAMESPACE`); reads given a list of namespaces see only those.
    """

    who: str
    source: str | None = None
    edit_id: str | None = None
    namespace: str | None = None


@dataclass(frozen=True)
class Entity:
    """A node of the graph: its IRI, its label (the IRI is made from it) and alternative names."""

    iri: str
    label: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assertion:
    """One asserted triple, stored in its own named graph ``GRAPH + id``, with provenance and validity.

    The triple holds labels and the relation id; ``*_iri`` the RDF terms. It is valid at ``t`` iff
    ``valid_from <= t`` and (``invalid_at is None`` or ``t < invalid_at``).

    Attributes:
        id: ``"a-"`` + 32 hex digits, ordered by creation within a process.
        recorded_at: when it was written.
        invalidated_by: the edit id that invalidated (superseded) it, if that edit had one.
        namespace: the tenant namespace it belongs to (:data:`WORLD_NAMESPACE` for legacy assertions).
    """

    id: str
    triple: Triple
    subject_iri: str
    relation_iri: str
    object_iri: str
    who: str
    source: str | None
    edit_id: str | None
    recorded_at: datetime
    valid_from: datetime
    invalid_at: datetime | None
    invalidated_by: str | None
    namespace: str = WORLD_NAMESPACE

    def valid_at(self, t: datetime) -> bool:
        return self.valid_from <= t and (self.invalid_at is None or t < self.invalid_at)

    @property
    def provenance(self) -> Provenance:
        namespace = None if self.namespace == WORLD_NAMESPACE else self.namespace
        return Provenance(self.who, self.source, self.edit_id, namespace)


@dataclass(frozen=True)
class AddResult:
    """What :meth:`KnowledgeGraph.add` did.

    Attributes:
        assertion: the new assertion, or the already valid one when ``created`` is False.
        superseded: assertions this add invalidated (as they are now, with ``invalid_at`` set).
        created: False when the same triple was already valid and nothing new was asserted.
    """

    assertion: Assertion
    superseded: tuple[Assertion, ...]
    created: bool
