"""The knowledge graph: entities, assertions with provenance and validity, history, time travel, queries.

Data model (over any :class:`~kg.TripleStore`):

* ``FA.entities``: ``rdfs:label`` and ``skos:altLabel`` of each entity (IRI = ``ENT`` + encoded label) as
  the world names it; a tenant namespace's names are in a names graph of its own (``kg/_names.py``), so a
  reader resolves only the names of the namespaces it reads;
* one named graph per assertion holding its single triple, described in ``FA.provenance``
  (see ``kg/_provenance.py``);
* ``FA.current``: the triples of all assertions not invalidated, kept in the same transaction as every
  write, so multi-hop SPARQL property paths run on one plain graph.

Nothing is deleted by a new fact: a superseded assertion gets ``invalidAt`` / ``invalidatedBy`` and stays
in :meth:`KnowledgeGraph.history`; :meth:`KnowledgeGraph.rollback` undoes one edit exactly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice

from rdflib import Dataset, Literal
from rdflib.namespace import RDFS, SKOS
from rdflib.term import Node, URIRef

from kg._conflicts import Conflict, find_conflicts
from kg._labels import label_in as _label_in
from kg._names import entities_of, name_quads
from kg._provenance import assertion_id_of, decode_assertion, is_assertion_graph, load_assertion
from kg._query import Binding, check_select, path_query, to_terms
from kg._records import WORLD_NAMESPACE, AddResult, Assertion, Entity, Provenance
from kg._rollback import rollback_edit
from kg._schema import Schema
from kg._store import Quad, TripleStore
from kg._view import GraphView
from kg._vocab import FA, check_text, is_entity_iri, label_of
from kg._writer import BatchWriter, check_namespace, check_provenance, entity_ref
from tools.base import Triple, check_time
from tools.errors import InvalidInputError, NotFoundError

__all__ = ["KnowledgeGraph"]

logger = logging.getLogger(__name__)


def _visible(assertions: Iterable[Assertion], namespaces: Sequence[str] | None) -> list[Assertion]:
    """Those in ``namespaces`` (all for ``None``), each (subject, relation) from its first namespace holding any.

    ``namespaces`` is in order of precedence (the caller's own first, then shared ones): what a namespace
    says about (subject, relation) shadows what later ones say, so a tenant's edit of a world fact answers
    for that tenant while the world keeps its fact for everyone else.
    """
    if namespaces is None:
        return list(assertions)
    rank = {ns: i for i, ns in reversed(list(enumerate(namespaces)))}
    kept = [a for a in assertions if a.namespace in rank]
    best: dict[tuple[str, str], int] = {}
    for a in kept:
        key = (a.subject_iri, a.relation_iri)
        best[key] = min(best.get(key, len(rank)), rank[a.namespace])
    return [a for a in kept if rank[a.namespace] == best[(a.subject_iri, a.relation_iri)]]


def _check_namespaces(namespaces: Sequence[str] | None) -> Sequence[str] | None:
    if namespaces is None:
        return None
    if isinstance(namespaces, str):
        raise InvalidInputError("namespaces must be a sequence of namespace names, not one string")
    return [check_namespace(ns) for ns in namespaces]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_time(value: object, what: str) -> datetime:
    """The memory's rule for a time (``tools.base.check_time``), normalised to UTC for the RDF literals."""
    return check_time(value, what).astimezone(UTC)


class KnowledgeGraph:
    """Facts as RDF: one named graph per assertion, with provenance, validity time and exact rollback.

    Args:
        store: where the quads live (``MemoryTripleStore``, ``SQLiteTripleStore``, ``SPARQLEndpointStore``).
        schema: the relation axioms (:func:`kg.load_schema`).
        clock: returns the current time (timezone-aware); tests pass a fake one.

    Entities are named by label (the IRI is derived from it) or by IRI; where a method reads, a label that
    names no entity is also tried as an alias. Write methods are thread-safe and each runs in one store
    transaction.

    Example:
        >>> from kg import MemoryTripleStore, load_schema
        >>> from tools.base import Triple, check_time
        >>> kg = KnowledgeGraph(MemoryTripleStore(), load_schema())
        >>> _ = kg.add(Triple("Acme", "company_ceo", "Ann"), Provenance("user:alice", edit_id="e1"))
        >>> result = kg.add(Triple("Acme", "company_ceo", "Bob"), Provenance("user:alice", edit_id="e2"))
        >>> [a.triple.object for a in result.superseded], [a.triple.object for a in kg.facts("Acme")]
        (['Ann'], ['Bob'])
    """

    def __init__(self, store: TripleStore, schema: Schema, *, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._schema = schema
        self._clock = clock or _utc_now
        self._lock = threading.RLock()

    @property
    def schema(self) -> Schema:
        return self._schema

    @property
    def store(self) -> TripleStore:
        return self._store

    def _now(self) -> datetime:
        return _check_time(self._clock(), "clock()")

    def _at(self, as_of: datetime | None) -> datetime:
        return self._now() if as_of is None else _check_time(as_of, "as_of")

    # -- entities --------------------------------------------------------------------------------------

    def entity(
        self,
        label: str,
        aliases: Sequence[str] = (),
        *,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Entity:
        """Get or create the entity named ``label`` in ``namespace``; new ``aliases`` are added (idempotent).

        ``namespace``: whose names these are (``None``: the shared world's); readers of other namespaces do
        not see them. ``labels``: its names in other languages, language tag -> name (``{"zh": "法国"}``):
        each is read back by :meth:`label_in` and also becomes an alias (see ``kg/_labels.py``).

        Raises:
            InvalidInputError: an empty, over-long label or alias, or one with control characters; a bad
                namespace or language tag; another name already in one of the ``labels``' languages.
        """
        ns = None if namespace is None else check_namespace(namespace)
        with self._lock, self._store.transaction():
            writer = BatchWriter(self._store, self._schema)
            node = writer.entity(label, aliases, namespace=ns, labels=labels)
            writer.flush()
        return self.get_entity(str(node), namespaces=[ns or WORLD_NAMESPACE])

    def label_in(self, name: str, language: str, *, namespaces: Sequence[str] | None = None) -> str | None:
        """The name in ``language`` (a tag: ``"zh"``) of the entity ``name`` (label, alias or IRI) as a reader
        of ``namespaces`` (``None``: all) sees it; ``None`` when it has none there (or there is no such entity).

        Raises:
            InvalidInputError: a bad name, language tag or namespace.
        """
        names = _check_namespaces(namespaces)
        return _label_in(self._store, self._resolve(name, names), language, names)

    def get_entity(self, iri: str, *, namespaces: Sequence[str] | None = None) -> Entity:
        """The entity with this IRI (or label), with the names readers of ``namespaces`` see (``None``: all).

        Raises:
            NotFoundError: no such entity (none named in ``namespaces``).
        """
        names = _check_namespaces(namespaces)
        node = entity_ref(iri)
        labels = name_quads(self._store, node, RDFS.label, None, names)
        if not labels:
            raise NotFoundError(f"no entity {iri!r}")
        aliases = sorted({str(q[2]) for q in name_quads(self._store, node, SKOS.altLabel, None, names)})
        return Entity(str(node), str(labels[0][2]), tuple(aliases))

    def entities(self, namespaces: Sequence[str] | None = None) -> Iterator[Entity]:
        """Every entity named in ``namespaces`` (``None``: all), in IRI order, with the names they see."""
        names = _check_namespaces(namespaces)
        aliases: dict[str, set[str]] = {}
        labels: dict[str, str] = {}
        for _, entity in self.named_entities(names):
            labels[entity.iri] = entity.label
            aliases.setdefault(entity.iri, set()).update(entity.aliases)
        for node in sorted(labels):
            yield Entity(node, labels[node], tuple(sorted(aliases[node])))

    def named_entities(self, namespaces: Sequence[str] | None = None) -> list[tuple[str, Entity]]:
        """(namespace, entity with the names that namespace gave it), for every namespace naming an entity.

        What an entity index keyed by namespace needs (``EntityLinker.add(entity, namespace=...)``).
        """
        names = _check_namespaces(namespaces)
        return entities_of(
            name_quads(self._store, None, RDFS.label, None, names),
            name_quads(self._store, None, SKOS.altLabel, None, names),
        )

    def names_of(self, name: str) -> list[tuple[str, Entity]]:
        """:meth:`named_entities` of the one entity labelled ``name`` (or with this IRI); empty if none.

        Raises:
            InvalidInputError: a bad name.
        """
        node = entity_ref(name)
        return entities_of(
            name_quads(self._store, node, RDFS.label, None, None),
            name_quads(self._store, node, SKOS.altLabel, None, None),
        )

    def _resolve(self, name: str, namespaces: Sequence[str] | None = None) -> list[URIRef]:
        """Entities ``name`` denotes for a reader of ``namespaces``: by IRI or label, else by alias."""
        node = entity_ref(name)
        if name_quads(self._store, node, RDFS.label, None, namespaces):
            return [node]
        if isinstance(name, URIRef) or is_entity_iri(name):
            return []
        alias = Literal(check_text(name, "entity name"))
        found = {q[0] for q in name_quads(self._store, None, SKOS.altLabel, alias, namespaces)}
        return sorted((node for node in found if isinstance(node, URIRef)), key=str)

    # -- writes ----------------------------------------------------------------------------------------

    def add(
        self,
        triple: Triple,
        provenance: Provenance,
        *,
        valid_from: datetime | None = None,
        replaces: str | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
    ) -> AddResult:
        """Assert ``triple`` in a new named graph, in one transaction.

        * If the same triple is already valid, nothing new is asserted (``created=False``).
        * Functional relation: every other valid object of (subject, relation) is invalidated
          (``invalid_at = valid_from``, ``invalidated_by = provenance.edit_id``), never deleted.
        * ``replaces=o_old`` (label or IRI) also invalidates a valid (subject, relation, o_old) of a
          non-functional relation: the knowledge edit "o_old -> object".
        * Entities are created as needed; ``aliases`` maps a subject/object label to alternative names.

        Args:
            triple: labels and relation id (or relation IRI / Wikidata id).
            provenance: who, source and edit id (rollback undoes everything one edit id wrote).
            valid_from: when the fact became true (default: now); timezone-aware.
            replaces: the object this edit replaces, for non-functional relations.
            aliases: extra names of the subject or object, keyed by their label.

        Returns:
            The assertion, what it superseded, and whether it was created.

        Raises:
            InvalidInputError: unknown relation, bad label, naive datetime, bad provenance; nothing is written.
            StoreError: the store failed; nothing is written.
        """
        checked = check_provenance(provenance)
        with self._lock, self._store.transaction():
            recorded_at = self._now()
            start = recorded_at if valid_from is None else _check_time(valid_from, "valid_from")
            writer = BatchWriter(self._store, self._schema)
            result = writer.add(
                triple, checked, recorded_at=recorded_at, valid_from=start, replaces=replaces, aliases=aliases
            )
            writer.flush()
        if result.created:
            logger.debug("asserted %s as %s", result.assertion.triple, result.assertion.id)
        return result

    def add_many(
        self,
        items: Iterable[tuple[Triple, Provenance]],
        *,
        valid_from: datetime | None = None,
        batch: int = 5_000,
    ) -> int:
        """Bulk-load facts with :meth:`add`'s semantics, one transaction per ``batch`` items.

        All items are validated before anything is written. Store reads are one per new (subject, relation)
        and entity, writes one call per batch.

        Returns:
            The number of assertions created (facts already valid are skipped).

        Raises:
            InvalidInputError: a bad item (nothing written) or batch < 1.
            StoreError: the store failed; earlier batches stay committed.
        """
        if not isinstance(batch, int) or batch < 1:
            raise InvalidInputError(f"batch must be a positive integer, got {batch!r}")
        start = None if valid_from is None else _check_time(valid_from, "valid_from")
        checked: list[tuple[Triple, Provenance]] = []
        for item in items:
            if not isinstance(item, tuple) or len(item) != 2 or not isinstance(item[0], Triple):
                raise InvalidInputError(f"add_many items are (Triple, Provenance) pairs, got {item!r}")
            self._schema.relation(item[0].relation)
            check_text(item[0].subject, "triple subject")
            check_text(item[0].object, "triple object")
            checked.append((item[0], check_provenance(item[1])))
        created = 0
        pending = iter(checked)
        while chunk := list(islice(pending, batch)):
            with self._lock, self._store.transaction():
                recorded_at = self._now()
                writer = BatchWriter(self._store, self._schema)
                for triple, provenance in chunk:
                    result = writer.add(triple, provenance, recorded_at=recorded_at, valid_from=start or recorded_at)
                    created += result.created
                writer.flush()
        logger.info("bulk-loaded %d facts (%d new assertions)", len(checked), created)
        return created

    def rollback(self, edit_id: str) -> int:
        """Undo everything edit ``edit_id`` wrote, exactly.

        Its assertion graphs and their provenance are removed, the assertions it invalidated become valid
        again, entities and aliases it created are removed (an entity still used by another assertion is
        kept), and ``FA.current`` follows. Rolled back newest first, the store's quads equal those before the
        edit.

        Returns:
            The number of assertions removed plus those restored.

        Raises:
            NotFoundError: nothing in the graph was written by ``edit_id``.
        """
        edit = check_text(edit_id, "edit_id", 1_000)
        with self._lock, self._store.transaction():
            count = rollback_edit(self._store, edit)
        logger.info("rolled back edit %s (%d assertions)", edit, count)
        return count

    # -- reads -----------------------------------------------------------------------------------------

    def _decode_all(self, quads: Iterable[Quad]) -> list[Assertion]:
        found: dict[str, Assertion] = {}
        for quad in quads:
            if is_assertion_graph(quad[3]) and assertion_id_of(quad[3]) not in found:
                provenance = self._store.quads(quad[3], None, None, FA.provenance)
                found[assertion_id_of(quad[3])] = decode_assertion(self._schema, quad, provenance)
        return sorted(found.values(), key=lambda a: (a.recorded_at, a.id))

    def _match(
        self, subject: str | None, relation: str | None, obj: str | None, names: Sequence[str] | None = None
    ) -> list[Assertion]:
        """All assertions (valid or not) matching the pattern; names resolved as in :meth:`_resolve`."""
        predicate = None if relation is None else URIRef(self._schema.relation(relation).iri)
        subjects: list[URIRef | None] = [None] if subject is None else list(self._resolve(subject, names))
        objects: list[URIRef | None] = [None] if obj is None else list(self._resolve(obj, names))
        quads: list[Quad] = []
        for s in subjects:
            for o in objects:
                quads += self._store.quads(s, predicate, o, None)
        return self._decode_all(quads)

    def facts(
        self,
        subject: str | None = None,
        relation: str | None = None,
        obj: str | None = None,
        *,
        as_of: datetime | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> list[Assertion]:
        """Assertions valid at ``as_of`` (default now) matching the pattern, oldest first.

        Args:
            subject: label, alias or IRI; ``None`` matches any.
            relation: relation id, IRI or Wikidata id; ``None`` matches any.
            obj: label, alias or IRI; ``None`` matches any.
            as_of: a timezone-aware time.
            namespaces: the namespaces the reader sees, in order of precedence (``None``: all, unshadowed).
                Per (subject, relation), only the first namespace that holds a valid fact answers.

        Raises:
            InvalidInputError: unknown relation, bad name or namespace, naive datetime.
        """
        t = self._at(as_of)
        names = _check_namespaces(namespaces)
        if obj is None or names is None:
            return _visible((a for a in self._match(subject, relation, obj, names) if a.valid_at(t)), names)
        # Shadowing is decided over all objects of (subject, relation), then the object is matched.
        wanted = {str(o) for o in self._resolve(obj, names)}
        found = _visible((a for a in self._match(subject, relation, None, names) if a.valid_at(t)), names)
        return [a for a in found if a.object_iri in wanted]

    def history(
        self, subject: str, relation: str | None = None, *, namespaces: Sequence[str] | None = None
    ) -> list[Assertion]:
        """Every assertion about ``subject`` (and ``relation``), invalidated ones included, by recorded_at.

        ``namespaces``: only assertions in these (``None``: all), the subject named as their readers name it.
        """
        names = _check_namespaces(namespaces)
        found = self._match(subject, relation, None, names)
        return found if names is None else [a for a in found if a.namespace in names]

    def view(self, namespaces: Sequence[str]) -> GraphView:
        """A read-only view of what a reader of ``namespaces`` (in order of precedence) sees."""
        return GraphView(self, _check_namespaces(namespaces) or ())

    def assertion(self, assertion_id: str) -> Assertion:
        """The assertion with this id.

        Raises:
            NotFoundError: no such assertion.
        """
        if not isinstance(assertion_id, str) or not assertion_id.startswith("a-") or not assertion_id[2:].isalnum():
            raise NotFoundError(f"no assertion {assertion_id!r}")
        return load_assertion(self._store, self._schema, assertion_id)

    def assertions_for_edit(self, edit_id: str) -> list[Assertion]:
        """Assertions written by edit ``edit_id`` (valid or not), oldest first; empty if none."""
        edit = Literal(check_text(edit_id, "edit_id", 1_000))
        graphs = [q[0] for q in self._store.quads(None, FA.editId, edit, FA.provenance) if isinstance(q[0], URIRef)]
        return self._decode_all(q for g in graphs for q in self._store.quads(None, None, None, g))

    def objects(
        self,
        subject: str,
        path: Sequence[str],
        *,
        as_of: datetime | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> list[Entity]:
        """Entities reached from ``subject`` along ``path`` (relation ids; ``"^r"`` walks r backwards).

        Runs one SPARQL property path (``rel:a/rel:b``) with ``?s`` bound: for the whole graph now
        (``namespaces=None``, ``as_of=None``) on ``FA.current``, which holds every fact not invalidated,
        including one whose ``valid_from`` is still in the future; otherwise on an in-memory snapshot of the
        triples valid at ``as_of`` (default now) that a reader of ``namespaces`` sees (as :meth:`facts`: each
        (subject, relation) from the first namespace holding any). Names are resolved, and the entities
        returned named, as that reader names them.

        Example:
            ``kg.objects("Ann", ["person_father", "person_mother"])`` is Ann's paternal grandmother.

        Raises:
            InvalidInputError: an empty or unknown path, a bad name, time or namespace.
        """
        names = _check_namespaces(namespaces)
        sparql = path_query(self._schema, path)
        starts = self._resolve(subject, names)
        found: set[str] = set()
        if as_of is None and names is None:
            for s in starts:
                found.update(str(row[0]) for row in self._store.query(sparql, {"s": s}) if isinstance(row[0], URIRef))
        else:
            snapshot = self._snapshot(path, self._at(as_of), names)
            for s in starts:
                for row in snapshot.query(sparql, initBindings={"s": s}):
                    node = row[0] if isinstance(row, tuple) else None  # SELECT rows are ResultRow tuples
                    if isinstance(node, URIRef):
                        found.add(str(node))
        return [self._entity_or_bare(node, names) for node in sorted(found)]

    def _entity_or_bare(self, node: str, names: Sequence[str] | None) -> Entity:
        try:
            return self.get_entity(node, namespaces=names)
        except NotFoundError:
            return Entity(node, label_of(node), ())

    def _snapshot(self, path: Sequence[str], t: datetime, names: Sequence[str] | None) -> Dataset:
        """A dataset whose ``FA.current`` holds the triples of the path's relations that a reader of ``names``
        (``None``: all, unshadowed) sees valid at ``t``."""
        snapshot = Dataset()
        current = snapshot.graph(FA.current)
        for step in dict.fromkeys(s.removeprefix("^") for s in path):
            predicate = URIRef(self._schema.relation(step).iri)
            found = self._decode_all(self._store.quads(None, predicate, None, None))
            for a in _visible((a for a in found if a.valid_at(t)), names):
                current.add((URIRef(a.subject_iri), predicate, URIRef(a.object_iri)))
        return snapshot

    def conflicts(
        self,
        triple: Triple,
        *,
        as_of: datetime | None = None,
        single_valued: bool = False,
        namespaces: Sequence[str] | None = None,
    ) -> list[Conflict]:
        """Conflicts of a candidate fact with the facts valid at ``as_of`` (nothing is written).

        Args:
            triple: the candidate.
            as_of: a timezone-aware time; default now.
            single_valued: the candidate replaces the answer to (subject, relation) even if the relation
                is not functional (a knowledge edit).
            namespaces: judge only against what a reader of these sees (as :meth:`facts`); ``None``: all.

        Raises:
            InvalidInputError: unknown relation, bad label, time or namespace.
        """
        names = _check_namespaces(namespaces)
        if not isinstance(triple, Triple):
            raise InvalidInputError(f"triple must be a memory.Triple, got {type(triple).__name__}")
        t = self._at(as_of)
        subjects = self._resolve(triple.subject, names) or [entity_ref(triple.subject)]
        objects = {str(o) for o in self._resolve(triple.object, names) or [entity_ref(triple.object)]}

        def lookup(s: str | None, relation: str, o: str | None) -> list[Assertion]:
            quads = self._store.quads(
                None if s is None else URIRef(s),
                URIRef(self._schema.relation(relation).iri),
                None if o is None else URIRef(o),
                None,
            )
            return _visible([a for a in self._decode_all(quads) if a.valid_at(t)], names)

        found: list[Conflict] = []
        for s in subjects:
            found += find_conflicts(self._schema, lookup, triple, str(s), objects, single_valued=single_valued)
        return found

    def query(self, sparql: str, bindings: Mapping[str, Binding] | None = None) -> list[tuple[Node | None, ...]]:
        """Run a SPARQL SELECT over the whole dataset with values bound to variables, never pasted in.

        Args:
            sparql: a SELECT query; ``FROM`` and ``SERVICE`` are refused.
            bindings: variable name (no ``?``) -> str (plain literal), int/float/bool, aware datetime
                (``xsd:dateTime``) or an rdflib term; use :func:`kg.iri` to bind an IRI.

        Returns:
            One tuple of rdflib terms (``None`` where unbound) per solution.

        Raises:
            QueryError: malformed, or not a SELECT.
            InvalidInputError: a bad binding.

        Example:
            ``kg.query("SELECT ?e WHERE { GRAPH ?g { ?e ?p ?o } }", {"o": iri("https://factagent.dev/entity/Bob")})``
        """
        check_select(sparql)
        terms = to_terms(bindings)
        return [tuple(row) for row in self._store.query(sparql, terms)]
