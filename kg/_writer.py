"""Planning the quads of a batch of adds: entities, new assertions, supersession, the ``FA.current`` view.

A :class:`BatchWriter` reads the store once per (subject, relation) and per entity, then keeps its own view of
what the batch has written so far, so a bulk load of thousands of facts needs no store round trip per fact
beyond those reads, and writes everything with one ``store.remove`` and one ``store.add`` (inside the caller's
transaction).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from rdflib import Literal
from rdflib.namespace import RDFS, SKOS
from rdflib.term import URIRef

from kg._labels import check_labels, label_quads, labels_in
from kg._names import names_graph
from kg._provenance import (
    assertion_id_of,
    assertion_quads,
    decode_assertion,
    invalidation_quads,
    is_assertion_graph,
    journal_graph,
    new_assertion_id,
)
from kg._records import WORLD_NAMESPACE, AddResult, Assertion, Provenance
from kg._schema import Schema
from kg._store import Quad, TripleStore
from kg._vocab import FA, check_text, entity_iri, iri, is_entity_iri, label_of
from tools.base import Triple
from tools.errors import InvalidInputError

__all__ = ["BatchWriter", "check_namespace", "check_provenance", "entity_ref"]

_MAX_META = 1_000
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


def check_provenance(provenance: Provenance) -> Provenance:
    """Validate a provenance record; returns it with its strings stripped.

    Raises:
        InvalidInputError: not a Provenance, empty ``who``, or a field with control characters or over 1000
            characters.
    """
    if not isinstance(provenance, Provenance):
        raise InvalidInputError(f"provenance must be a Provenance, got {type(provenance).__name__}")
    return Provenance(
        who=check_text(provenance.who, "provenance.who", _MAX_META),
        source=None if provenance.source is None else check_text(provenance.source, "provenance.source", _MAX_META),
        edit_id=None if provenance.edit_id is None else check_text(provenance.edit_id, "provenance.edit_id", _MAX_META),
        namespace=None if provenance.namespace is None else check_namespace(provenance.namespace),
    )


def check_namespace(value: object) -> str:
    """A namespace name as memory's ``Scope`` accepts it (1-128 letters, digits and ``_ . : @ -``).

    Raises:
        InvalidInputError: anything else.
    """
    if not isinstance(value, str) or not _NAMESPACE.match(value):
        raise InvalidInputError(
            f"a namespace is 1-128 letters, digits and _ . : @ - (starting alphanumeric), got {value!r}"
        )
    return value


def entity_ref(value: str) -> URIRef:
    """An entity given as a label, an ``ENT`` IRI string, or a ``URIRef`` (validated)."""
    if isinstance(value, URIRef):
        return iri(str(value))
    if isinstance(value, str) and is_entity_iri(value):
        return iri(value)
    return entity_iri(value)


class BatchWriter:
    """Computes and accumulates the quads of adds; :meth:`flush` writes them.

    Nothing touches the store before :meth:`flush`, so a validation error anywhere in a batch leaves the
    store unchanged. The caller holds the store transaction around planning and flushing.
    """

    def __init__(self, store: TripleStore, schema: Schema) -> None:
        self._store = store
        self._schema = schema
        self._adds: dict[Quad, None] = {}  # ordered sets; a quad is never in both
        self._removes: dict[Quad, None] = {}
        self._valid: dict[tuple[URIRef, URIRef], dict[str, Assertion]] = {}
        # (names graph, entity) -> the entity's aliases there; None: the entity has no name there
        self._aliases: dict[tuple[URIRef, URIRef], set[str] | None] = {}

    # -- accumulation -------------------------------------------------------------------------------

    def _add(self, quad: Quad) -> None:
        if self._removes.pop(quad, 0) is None:
            return  # it was stored already and only pending removal
        self._adds[quad] = None

    def _remove(self, quad: Quad) -> None:
        if self._adds.pop(quad, 0) is None:
            return  # added by this batch: dropping the pending add is enough
        self._removes[quad] = None

    def flush(self) -> None:
        if self._removes:
            self._store.remove(list(self._removes))
        if self._adds:
            self._store.add(list(self._adds))
        self._adds.clear()
        self._removes.clear()

    # -- entities ------------------------------------------------------------------------------------

    def _known_aliases(self, graph: URIRef, entity: URIRef) -> set[str] | None:
        key = (graph, entity)
        if key not in self._aliases:
            if next(iter(self._store.quads(entity, RDFS.label, None, graph)), None) is None:
                self._aliases[key] = None
            else:
                self._aliases[key] = {str(q[2]) for q in self._store.quads(entity, SKOS.altLabel, None, graph)}
        return self._aliases[key]

    def entity(
        self,
        label: str,
        aliases: Sequence[str] = (),
        edit_id: str | None = None,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> URIRef:
        """Get or create the entity ``label`` and add any new ``aliases``, as names of ``namespace``.

        The names go into ``namespace``'s names graph (``None``: the world's; see ``kg/_names.py``) and are
        journaled under ``edit_id`` (in that namespace's journal, listed in the edit's main journal graph).
        ``labels``: names in other languages (``{"zh": "法国"}``), each a tagged ``skos:prefLabel`` and a
        plain alias (``kg/_labels.py``).

        Raises:
            InvalidInputError: a bad name or language tag, or another name already in one of the languages.
        """
        text = check_text(label, "entity label")
        if isinstance(aliases, str):
            raise InvalidInputError("aliases must be a sequence of strings, not one string")
        names = [check_text(a, f"alias of {text!r}") for a in aliases]
        tagged = check_labels(labels, text)
        graph = names_graph(namespace)
        node = entity_iri(text)
        known = self._known_aliases(graph, node)
        quads: list[Quad] = []
        if tagged:
            quads += label_quads(node, graph, tagged, labels_in(self._store, node, graph, list(self._adds)))
            names += list(tagged.values())
        if known is None:
            quads.insert(0, (node, RDFS.label, Literal(text), graph))
            known = self._aliases[(graph, node)] = set()
        for name in names:
            if name != text and name not in known:
                known.add(name)
                quads.append((node, SKOS.altLabel, Literal(name), graph))
        if quads and edit_id is not None and graph != FA.entities:
            main = journal_graph(edit_id)  # rollback finds a tenant's journal through the main one
            self._add((main, FA.namespace, Literal(namespace), main))
        for quad in quads:
            self._add(quad)
            if edit_id is not None:
                self._add((*quad[:3], journal_graph(edit_id, namespace)))
        return node

    # -- assertions ----------------------------------------------------------------------------------

    def valid(self, subject: URIRef, relation: URIRef) -> dict[str, Assertion]:
        """Assertions of (subject, relation, *) not invalidated, as of this batch, by id."""
        key = (subject, relation)
        if key not in self._valid:
            found: dict[str, Assertion] = {}
            # FA.current lists exactly the triples of non-invalidated assertions: most keys stop here.
            for _, _, obj, _ in list(self._store.quads(subject, relation, None, FA.current)):
                for quad in list(self._store.quads(subject, relation, obj, None)):
                    if not is_assertion_graph(quad[3]):
                        continue
                    provenance = self._store.quads(quad[3], None, None, FA.provenance)
                    assertion = decode_assertion(self._schema, quad, provenance)
                    if assertion.invalid_at is None:
                        found[assertion_id_of(quad[3])] = assertion
            self._valid[key] = found
        return self._valid[key]

    def add(
        self,
        triple: Triple,
        provenance: Provenance,
        *,
        recorded_at: datetime,
        valid_from: datetime,
        replaces: str | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
    ) -> AddResult:
        """Plan one add (see :meth:`KnowledgeGraph.add` for the semantics)."""
        if not isinstance(triple, Triple):
            raise InvalidInputError(f"triple must be a memory.Triple, got {type(triple).__name__}")
        spec = self._schema.relation(triple.relation)
        subject_label = check_text(triple.subject, "triple subject")
        object_label = check_text(triple.object, "triple object")
        names = {check_text(key, "aliases key"): value for key, value in (aliases or {}).items()}
        for key in names:
            if key not in (subject_label, object_label):
                raise InvalidInputError(f"aliases key {key!r} is neither the subject nor the object of {triple}")
        old = None if replaces is None else entity_ref(replaces)
        namespace = provenance.namespace or WORLD_NAMESPACE
        subject = self.entity(subject_label, names.get(subject_label, ()), provenance.edit_id, namespace)
        obj = self.entity(object_label, names.get(object_label, ()), provenance.edit_id, namespace)
        if old == obj:
            raise InvalidInputError(f"replaces={replaces!r} names the new object itself")
        relation = URIRef(spec.iri)
        valid = self.valid(subject, relation)
        # Supersession is local to the writer's namespace: another tenant's (or the world's) facts stay valid
        # for their readers; the writer's own fact shadows them in its reads (KnowledgeGraph.facts).
        doomed = [
            a
            for a in valid.values()
            if a.namespace == namespace and ((spec.functional and a.object_iri != str(obj)) or a.object_iri == str(old))
        ]
        superseded = []
        for before in doomed:
            # Never end an assertion before it began (a back-dated valid_from).
            at = max(valid_from, before.valid_from)
            after = dataclasses.replace(before, invalid_at=at, invalidated_by=provenance.edit_id)
            for quad in invalidation_quads(before.id, at, provenance.edit_id):
                self._add(quad)
            del valid[before.id]
            if not any(a.object_iri == before.object_iri for a in valid.values()):  # no other namespace holds it
                self._remove((subject, relation, URIRef(before.object_iri), FA.current))
            superseded.append(after)
        existing = next((a for a in valid.values() if a.object_iri == str(obj) and a.namespace == namespace), None)
        if existing is not None:
            return AddResult(existing, tuple(superseded), created=False)
        assertion = Assertion(
            id=new_assertion_id(),
            triple=Triple(label_of(str(subject)), spec.id, label_of(str(obj))),
            subject_iri=str(subject),
            relation_iri=spec.iri,
            object_iri=str(obj),
            who=provenance.who,
            source=provenance.source,
            edit_id=provenance.edit_id,
            recorded_at=recorded_at,
            valid_from=valid_from,
            invalid_at=None,
            invalidated_by=None,
            namespace=namespace,
        )
        for quad in assertion_quads(assertion):
            self._add(quad)
        self._add((subject, relation, obj, FA.current))
        valid[assertion.id] = assertion
        return AddResult(assertion, tuple(superseded), created=True)
