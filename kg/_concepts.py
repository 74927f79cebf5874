"""Concepts in the knowledge graph: a class hierarchy, versioned definitions, and instance-of by subclass closure.

A concept is an entity named by its label. Three schema relations (``kg/schema/world.ttl``) hold it:
``subclass_of`` (its parent, rdfs:subClassOf; functional), ``concept_definition`` (its one-sentence definition;
functional, so a new definition supersedes the old one, which stays in the history) and ``instance_of``
(entity -> concept). Every write is an ordinary :meth:`KnowledgeGraph.add` under an edit id, so
:meth:`KnowledgeGraph.rollback` undoes a definition change exactly, like any fact.

**Membership** (:meth:`ConceptGraph.is_instance`) follows the *current* definition:

1. the concept the definition denotes (:meth:`ConceptGraph.denotes`): another concept whose current definition
   is the same text (normalised) -> the concept is read as that one (a definition edit that borrows a sibling's
   or a distant concept's definition, as ConceptEdit's edits do); else the concept itself;
2. an entity is an instance of a concept ``C`` when one of its ``instance_of`` classes is ``C`` or has ``C``
   among its ancestors (subclass closure) — the citations are that assertion and the subclass links walked;
3. an entity with classes, none of which reaches ``C``, is *not* an instance (the hierarchy's roots are taken as
   disjoint); an entity without any class is unknown (``None``).

**Conflicts** (:meth:`ConceptGraph.definition_conflicts`): a new definition that denotes another concept ``D``
contradicts every stored instance of ``C`` that is not an instance of ``D``; a definition whose genus ("a
<label> that ...") is a known concept under another root contradicts every stored instance of ``C``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rdflib.term import URIRef

from kg._graph import KnowledgeGraph
from kg._records import Assertion, Provenance
from tools.base import Triple
from tools.errors import FactagentError, HierarchyCycleError, InvalidDefinitionError, InvalidInputError, NotFoundError

__all__ = [
    "DEFINITION",
    "INSTANCE_OF",
    "MAX_DEFINITION_CHARS",
    "SUBCLASS_OF",
    "ConceptGraph",
    "DefinitionChange",
    "Membership",
]

DEFINITION, SUBCLASS_OF, INSTANCE_OF = "concept_definition", "subclass_of", "instance_of"
MAX_DEFINITION_CHARS = 300
_GENUS = re.compile(r"^(?:an?|the)\s+(?P<rest>.+)$", re.IGNORECASE)


def _norm(text: str) -> str:  # for the genus match: case and spacing do not matter
    return " ".join(text.casefold().rstrip(" .").split())


def check_definition(text: object) -> str:
    """A definition stripped of spaces and a final full stop.

    Raises:
        InvalidDefinitionError: not a string, empty, or longer than :data:`MAX_DEFINITION_CHARS`.
    """
    if not isinstance(text, str):
        raise InvalidDefinitionError(f"a definition must be a string, got {type(text).__name__}")
    clean = text.strip().rstrip(".").strip()
    if not clean:
        raise InvalidDefinitionError("a definition must not be empty")
    if len(clean) > MAX_DEFINITION_CHARS:
        raise InvalidDefinitionError(
            f"a definition must be at most {MAX_DEFINITION_CHARS} characters, got {len(clean)}"
        )
    return clean


@dataclass(frozen=True)
class Membership:
    """Whether an entity belongs to a concept, read from the graph.

    Attributes:
        answer: ``True`` / ``False``, or ``None`` when the graph holds no class of the entity.
        concept: the concept asked about.
        read_as: the concept its current definition denotes (``concept`` itself unless redefined as another).
        citations: the instance-of assertion and the subclass links that decide it (empty for ``None``).
    """

    answer: bool | None
    concept: str
    read_as: str
    citations: tuple[Assertion, ...]


@dataclass(frozen=True)
class DefinitionChange:
    """What :meth:`ConceptGraph.define` wrote.

    Attributes:
        concept: the concept's label.
        created: the concept was not in the graph and was created by this definition.
        assertion: the new definition assertion.
        superseded: the definition it replaced, if any.
        conflicts: stored instances of the concept that contradict the new definition.
    """

    concept: str
    created: bool
    assertion: Assertion
    superseded: Assertion | None
    conflicts: tuple[str, ...]


class ConceptGraph:
    """Concepts over a :class:`KnowledgeGraph` (see the module docstring).

    Args:
        graph: the knowledge graph (its schema must declare the three concept relations).
        namespaces: what reads see, in order of precedence (``None``: everything).

    Example:
        >>> from kg import MemoryTripleStore, load_schema
        >>> concepts = ConceptGraph(KnowledgeGraph(MemoryTripleStore(), load_schema()))
        >>> _ = concepts.define("city", "a large town", Provenance("world:load", edit_id="w"))
        >>> concepts.definition("city").triple.object
        'a large town'
    """

    def __init__(self, graph: KnowledgeGraph, namespaces: Sequence[str] | None = None) -> None:
        for relation in (DEFINITION, SUBCLASS_OF, INSTANCE_OF):
            if relation not in graph.schema:
                raise InvalidInputError(f"the graph's schema has no {relation!r} relation (kg/schema/world.ttl)")
        self.graph = graph
        self.namespaces = namespaces

    # -- reads -----------------------------------------------------------------------------------------

    def _facts(self, subject: str | None, relation: str, obj: str | None = None) -> list[Assertion]:
        try:
            return self.graph.facts(subject, relation, obj, namespaces=self.namespaces)
        except NotFoundError:
            return []

    def definition(self, concept: str) -> Assertion | None:
        """The current definition assertion of ``concept`` (``None``: no definition)."""
        found = self._facts(concept, DEFINITION)
        return found[-1] if found else None

    def concepts(self) -> list[str]:
        """Labels of every concept with a current definition or parent, sorted."""
        out = {a.triple.subject for a in self._facts(None, DEFINITION)}
        out |= {a.triple.subject for a in self._facts(None, SUBCLASS_OF)}
        return sorted(out)

    def class_iris(self) -> frozenset[str]:
        """IRIs of every node the graph uses as a class, in any namespace, valid or superseded: the subjects of
        definitions and subclass links and the objects of subclass and instance-of links.

        For indexes of *fact* subjects (the agent's entity linker), which leave classes out: a class label is
        a common noun ("city", "star", "landmark") that questions about facts say in passing ("Which city is
        home to ...?"), and linking it would make it the question's subject. One scan of the three relations'
        quads, nothing decoded.
        """
        store, schema = self.graph.store, self.graph.schema
        found: set[str] = set()
        for relation, positions in ((DEFINITION, (0,)), (SUBCLASS_OF, (0, 2)), (INSTANCE_OF, (2,))):
            predicate = URIRef(schema.relation(relation).iri)
            for quad in store.quads(None, predicate, None, None):
                found.update(str(quad[i]) for i in positions if isinstance(quad[i], URIRef))
        return frozenset(found)

    def is_concept(self, label: str) -> bool:
        return self.definition(label) is not None or bool(self._facts(label, SUBCLASS_OF))

    def parent_link(self, concept: str) -> Assertion | None:
        found = self._facts(concept, SUBCLASS_OF)
        return found[-1] if found else None

    def ancestors(self, concept: str) -> list[Assertion]:
        """The subclass links from ``concept`` up to its root, nearest first (stops at a repeated class)."""
        links, seen, node = [], {concept.casefold()}, concept
        while (link := self.parent_link(node)) is not None:
            node = link.triple.object
            if node.casefold() in seen:
                break
            seen.add(node.casefold())
            links.append(link)
        return links

    def root(self, concept: str) -> str:
        up = self.ancestors(concept)
        return up[-1].triple.object if up else concept

    def denotes(self, concept: str, definition: str | None = None) -> str:
        """The concept a definition describes: another concept that held the same definition *first*, else
        ``concept`` itself.

        ``definition`` defaults to the current one; texts are compared as stored (trimmed, without a final
        full stop). "First" makes the relation one-way: when ``place`` is redefined with the definition of
        ``Microsoft product``, ``place`` now denotes ``Microsoft product``, while ``Microsoft product``, whose
        definition is older, still denotes itself.
        """
        mine = self.definition(concept)
        if definition is not None:
            text = check_definition(definition)
        elif mine is not None:
            text = mine.triple.object
        else:
            return concept
        for other in self._facts(None, DEFINITION, text):
            if other.triple.subject.casefold() == concept.casefold():
                continue
            if definition is not None or mine is None or other.recorded_at < mine.recorded_at:
                return other.triple.subject
        return concept

    def genus(self, definition: str) -> str | None:
        """The known concept a definition starts with ("a landmark that ..." -> ``landmark``), longest first."""
        match = _GENUS.match(definition.strip())
        if not match:
            return None
        rest = _norm(match.group("rest"))
        best = None
        for label in self.concepts():
            key = _norm(label)
            if (rest == key or rest.startswith(key + " ")) and (best is None or len(key) > len(_norm(best))):
                best = label
        return best

    def _reaches(self, klass: str, concept: str) -> list[Assertion] | None:
        """The subclass links from ``klass`` up to ``concept`` (``[]`` when equal), ``None`` when it does not."""
        if klass.casefold() == concept.casefold():
            return []
        walked: list[Assertion] = []
        for link in self.ancestors(klass):
            walked.append(link)
            if link.triple.object.casefold() == concept.casefold():
                return walked
        return None

    def is_instance(self, entity: str, concept: str) -> Membership:
        """Whether ``entity`` is a ``concept`` under its current definition (module docstring)."""
        read_as = self.denotes(concept)
        classes = self._facts(entity, INSTANCE_OF)
        for fact in classes:
            path = self._reaches(fact.triple.object, read_as)
            if path is not None:
                return Membership(True, concept, read_as, (fact, *path))
        if not classes:
            return Membership(None, concept, read_as, ())
        return Membership(False, concept, read_as, tuple(classes))

    def descendants(self, concept: str) -> list[str]:
        """``concept`` and every class below it (breadth first)."""
        found, queue = [concept], [concept]
        seen = {concept.casefold()}
        while queue:
            for link in self._facts(None, SUBCLASS_OF, queue.pop(0)):
                child = link.triple.subject
                if child.casefold() not in seen:
                    seen.add(child.casefold())
                    found.append(child)
                    queue.append(child)
        return found

    def instances(self, concept: str) -> list[str]:
        """Entities stored as instances of ``concept`` or of one of its subclasses (ignores redefinition)."""
        out = {a.triple.subject for klass in self.descendants(concept) for a in self._facts(None, INSTANCE_OF, klass)}
        return sorted(out)

    def definition_conflicts(self, concept: str, definition: str) -> list[str]:
        """Stored instances of ``concept`` that a new ``definition`` contradicts (module docstring), sorted."""
        mine = self.instances(concept)
        if not mine:
            return []
        target = self.denotes(concept, definition)
        if target.casefold() != concept.casefold():
            theirs = set(self.instances(target))
            return [e for e in mine if e not in theirs]
        genus = self.genus(definition)
        if genus is not None and self.root(genus).casefold() != self.root(concept).casefold():
            return mine
        return []

    # -- writes ----------------------------------------------------------------------------------------

    def define(
        self, concept: str, definition: str, provenance: Provenance, *, parent: str | None = None
    ) -> DefinitionChange:
        """Set ``concept``'s definition (and parent), creating the concept if the graph has none by that name.

        Everything is validated before anything is written; if a later write fails, the ones before it (same
        edit id) are rolled back, so nothing is half-applied.

        Raises:
            InvalidDefinitionError: empty or oversized definition.
            HierarchyCycleError: ``parent`` is the concept or one of its descendants.
            InvalidInputError: bad label or provenance (no edit id: a definition change must be undoable).
        """
        text = check_definition(definition)
        if not provenance.edit_id:
            raise InvalidInputError("a definition change needs an edit id (rollback undoes it)")
        if parent is not None:
            self._check_parent(concept, parent)
        created = not self.is_concept(concept)
        conflicts = tuple(self.definition_conflicts(concept, text)) if not created else ()
        result = self.graph.add(Triple(concept, DEFINITION, text), provenance)  # one transaction
        if parent is not None:
            try:
                self.graph.add(Triple(concept, SUBCLASS_OF, parent), provenance)
            except FactagentError:  # the definition is written: undo it, so nothing is half-applied
                self._undo(provenance.edit_id)
                raise
        superseded = result.superseded[0] if result.superseded else None
        return DefinitionChange(concept, created, result.assertion, superseded, conflicts)

    def _undo(self, edit_id: str) -> None:
        with contextlib.suppress(NotFoundError):  # nothing was written under the edit id
            self.graph.rollback(edit_id)

    def _check_parent(self, concept: str, parent: str) -> None:
        if parent.casefold() == concept.casefold():
            raise HierarchyCycleError(f"{concept!r} cannot be its own superclass")
        if any(link.triple.object.casefold() == concept.casefold() for link in self.ancestors(parent)):
            raise HierarchyCycleError(f"making {parent!r} the superclass of {concept!r} closes a cycle")

    def set_parent(self, concept: str, parent: str, provenance: Provenance) -> Assertion:
        """Make ``parent`` the superclass of ``concept`` (replacing its parent).

        Raises:
            HierarchyCycleError: ``parent`` is ``concept`` or below it; nothing is written.
        """
        self._check_parent(concept, parent)
        return self.graph.add(Triple(concept, SUBCLASS_OF, parent), provenance).assertion

    def add_instance(self, entity: str, concept: str, provenance: Provenance) -> Assertion:
        """Store ``entity`` instance_of ``concept``."""
        return self.graph.add(Triple(entity, INSTANCE_OF, concept), provenance).assertion

    def load(
        self,
        rows: Iterable[tuple[str, str | None, str, Sequence[str]]],
        provenance: Provenance,
    ) -> int:
        """Bulk-load ``(label, parent, definition, instances)`` rows (the world's ``concepts.jsonl``).

        Every definition is checked and the hierarchy checked for cycles before anything is written.

        Returns:
            The number of assertions created.

        Raises:
            InvalidDefinitionError: a bad definition; HierarchyCycleError: the rows' parents form a cycle.
        """
        items = list(rows)
        parents = {label: parent for label, parent, _, _ in items}
        for label, _, definition, _ in items:
            check_definition(definition)
            seen, node = {label}, parents.get(label)
            while node is not None:
                if node in seen:
                    raise HierarchyCycleError(f"the hierarchy has a cycle through {label!r}")
                seen.add(node)
                node = parents.get(node)
        triples = []
        for label, parent, definition, instances in items:
            triples.append(Triple(label, DEFINITION, check_definition(definition)))
            if parent is not None:
                triples.append(Triple(label, SUBCLASS_OF, parent))
            triples += [Triple(e, INSTANCE_OF, label) for e in instances]
        return self.graph.add_many((t, provenance) for t in triples)
