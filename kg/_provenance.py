"""How an assertion is written as quads, and read back.

Each assertion is one named graph ``GRAPH + "a-<hex>"`` holding its single triple. What is said *about* it
lives in the ``FA.provenance`` graph with the assertion's graph IRI as subject::

    <graph/a-…> prov:wasAttributedTo "user:alice" ;            # who
                prov:generatedAtTime "…"^^xsd:dateTime ;       # recorded_at
                dcterms:source "doc:d00017" ;                  # optional
                fa:editId "e-42" ;                             # optional
                fa:namespace "alice" ;                         # absent: the shared "world" namespace
                fa:validFrom "…"^^xsd:dateTime ;
                fa:invalidAt "…"^^xsd:dateTime ;               # once superseded
                fa:invalidatedBy "e-43" .                      # the superseding edit, if it had an id

Entities an edit created, and aliases it added, are journaled in the edit's own graph
``GRAPH + "e-<sha256 of the edit id>"`` (a copy of the ``FA.entities`` quads it wrote), so that rollback can
remove exactly those; names written in a tenant namespace (``kg/_names.py``) are journaled in a graph of
their own per namespace, listed in the main journal by ``<journal> fa:namespace "alice"``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeGuard

from rdflib import Literal
from rdflib.namespace import DCTERMS, PROV
from rdflib.term import Node, URIRef

from kg._records import WORLD_NAMESPACE, Assertion
from kg._schema import Schema
from kg._store import Quad, TripleStore
from kg._vocab import FA, GRAPH, label_of
from tools.base import Triple
from tools.errors import NotFoundError, StoreError

__all__ = [
    "ASSERTION_PREFIX",
    "assertion_id_of",
    "assertion_quads",
    "decode_assertion",
    "graph_of",
    "invalidation_quads",
    "is_assertion_graph",
    "journal_graph",
    "load_assertion",
    "new_assertion_id",
    "time_literal",
]

ASSERTION_PREFIX = str(GRAPH) + "a-"
_counter = itertools.count()
_PROCESS = os.urandom(4).hex()


def new_assertion_id() -> str:
    """``"a-"`` + 32 hex digits: nanoseconds, a per-process counter and a random process tag.

    Ids sort by creation within a process, which breaks ties between assertions recorded at the same
    (possibly fake) clock time.
    """
    return f"a-{time.time_ns():016x}{next(_counter) % 0xFFFFFFFF:08x}{_PROCESS}"


def graph_of(assertion_id: str) -> URIRef:
    return URIRef(str(GRAPH) + assertion_id)


def is_assertion_graph(graph: Node) -> TypeGuard[URIRef]:
    return isinstance(graph, URIRef) and str(graph).startswith(ASSERTION_PREFIX)


def journal_graph(edit_id: str, namespace: str | None = None) -> URIRef:
    """The graph journaling the names an edit wrote in ``namespace`` (its id hashed: edit ids are free text).

    The world's (``None``) is the edit's main journal; it also lists, as ``fa:namespace`` quads, the tenant
    namespaces the edit wrote names in.
    """
    key = edit_id if namespace is None or namespace == WORLD_NAMESPACE else f"{namespace}\n{edit_id}"
    return URIRef(str(GRAPH) + "e-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32])


def time_literal(value: datetime) -> Literal:
    return Literal(value.astimezone(UTC))


def assertion_quads(assertion: Assertion) -> list[Quad]:
    """The assertion's triple in its graph plus its provenance quads (validity fields included)."""
    g = graph_of(assertion.id)
    s, p, o = URIRef(assertion.subject_iri), URIRef(assertion.relation_iri), URIRef(assertion.object_iri)
    quads: list[Quad] = [
        (s, p, o, g),
        (g, PROV.wasAttributedTo, Literal(assertion.who), FA.provenance),
        (g, PROV.generatedAtTime, time_literal(assertion.recorded_at), FA.provenance),
        (g, FA.validFrom, time_literal(assertion.valid_from), FA.provenance),
    ]
    if assertion.source is not None:
        quads.append((g, DCTERMS.source, Literal(assertion.source), FA.provenance))
    if assertion.edit_id is not None:
        quads.append((g, FA.editId, Literal(assertion.edit_id), FA.provenance))
    if assertion.namespace != WORLD_NAMESPACE:
        quads.append((g, FA.namespace, Literal(assertion.namespace), FA.provenance))
    if assertion.invalid_at is not None:
        quads += invalidation_quads(assertion.id, assertion.invalid_at, assertion.invalidated_by)
    return quads


def invalidation_quads(assertion_id: str, at: datetime, by: str | None) -> list[Quad]:
    g = graph_of(assertion_id)
    quads: list[Quad] = [(g, FA.invalidAt, time_literal(at), FA.provenance)]
    if by is not None:
        quads.append((g, FA.invalidatedBy, Literal(by), FA.provenance))
    return quads


def _as_time(node: Node, what: str, graph: Node) -> datetime:
    value = node.toPython() if isinstance(node, Literal) else None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise StoreError(f"assertion {graph}: {what} is not a timezone-aware xsd:dateTime ({node!r})")
    return value.astimezone(UTC)


def load_assertion(store: TripleStore, schema: Schema, assertion_id: str) -> Assertion:
    """Read one assertion from the store.

    Raises:
        NotFoundError: no assertion graph with this id.
        StoreError: the graph exists but its quads do not form a valid assertion.
    """
    g = graph_of(assertion_id)
    triples = list(store.quads(None, None, None, g))
    if not triples:
        raise NotFoundError(f"no assertion {assertion_id!r}")
    if len(triples) != 1:
        raise StoreError(f"assertion graph {g} holds {len(triples)} triples, not 1")
    return decode_assertion(schema, triples[0], store.quads(g, None, None, FA.provenance))


def assertion_id_of(graph: Node) -> str:
    """The assertion id of an assertion graph IRI."""
    return str(graph)[len(str(GRAPH)) :]


def decode_assertion(schema: Schema, quad: Quad, provenance: Iterable[Quad]) -> Assertion:
    """The assertion whose graph holds ``quad``, given the ``FA.provenance`` quads about that graph.

    Raises:
        StoreError: the quads do not form a valid assertion.
    """
    s, p, o, g = quad
    assertion_id = assertion_id_of(g)
    fields: dict[Node, Node] = {pred: obj for _, pred, obj, _ in provenance}
    for required in (PROV.wasAttributedTo, PROV.generatedAtTime, FA.validFrom):
        if required not in fields:
            raise StoreError(f"assertion {g} has no {required} in {FA.provenance}")
    try:
        triple = Triple(label_of(str(s)), schema.relation(str(p)).id, label_of(str(o)))
    except ValueError as exc:  # InvalidInputError: the stored IRIs are not an entity / a schema relation
        raise StoreError(f"assertion {g} does not hold an entity-relation-entity triple: {exc}") from exc
    invalid = fields.get(FA.invalidAt)
    source, edit, by = fields.get(DCTERMS.source), fields.get(FA.editId), fields.get(FA.invalidatedBy)
    namespace = fields.get(FA.namespace)
    return Assertion(
        id=assertion_id,
        triple=triple,
        subject_iri=str(s),
        relation_iri=str(p),
        object_iri=str(o),
        who=str(fields[PROV.wasAttributedTo]),
        source=None if source is None else str(source),
        edit_id=None if edit is None else str(edit),
        recorded_at=_as_time(fields[PROV.generatedAtTime], "generatedAtTime", g),
        valid_from=_as_time(fields[FA.validFrom], "validFrom", g),
        invalid_at=None if invalid is None else _as_time(invalid, "invalidAt", g),
        invalidated_by=None if by is None else str(by),
        namespace=WORLD_NAMESPACE if namespace is None else str(namespace),
    )
