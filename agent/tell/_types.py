"""The interpreter's type check: a reading whose subject or object is known only as a class the relation's
domain or range excludes is not applied ("1 Geminorum can be found in Orion." is not a landmark's country: Orion
is known as a constellation).

An entity's classes are read off what is known about it: the ``rdfs:domain`` of every relation it is the subject
of and the ``rdfs:range`` of every relation it is the object of, in the knowledge graph the teller sees and in the
claims read so far from the same message ("Jane Roe, who runs AOL, lives in Paris.": Jane Roe is a person, so
"lives in Paris" is not a company's headquarters). A name with no known class fits every relation, and so does a
relation that declares no class; an entity with several classes fits when any of them is not declared disjoint
from the relation's (world data has Singapore both as a city and as a country).
"""

from __future__ import annotations

from collections.abc import Iterable

from kg import EntityLinker, GraphView, KnowledgeGraph, Schema, normalize_mention
from memory import Triple
from tools.errors import FactagentError

__all__ = ["TypeCheck"]


class TypeCheck:
    """Whether a triple's subject and object can belong to its relation's domain and range."""

    def __init__(self, schema: Schema, linker: EntityLinker, graph: KnowledgeGraph | None) -> None:
        self._schema = schema
        self._linker = linker
        self._graph = graph

    def fits(self, triple: Triple, told: Iterable[Triple] = ()) -> bool:
        """Whether ``triple`` agrees with the classes known for its names (``told``: triples read before it)."""
        if triple.relation not in self._schema:
            return True
        spec = self._schema.relation(triple.relation)
        told = tuple(told)
        return self._agrees(triple.subject, spec.domain, told) and self._agrees(triple.object, spec.range, told)

    def left_out(self, triple: Triple, names: Iterable[str], told: Iterable[Triple] = ()) -> str | None:
        """A name of the sentence (``names``) outside ``triple`` that is known to be of the class the relation
        wants where the triple's own name is not known to be: "Mark Smith succeeded Tim Armstrong as CEO of AOL."
        read as (Mark Smith, CEO, Tim Armstrong) leaves out AOL, a company, for an unknown subject. Only for a
        relation whose two sides are of different classes (between two people any of several names may fit), and
        only for the subject: a told object is often a new name while other known names of its class are about."""
        if triple.relation not in self._schema:
            return None
        spec = self._schema.relation(triple.relation)
        if spec.domain is None or spec.range is None or spec.domain == spec.range:
            return None
        told = tuple(told)
        if spec.domain in self.classes(triple.subject, told):
            return None
        inside = (f" {normalize_mention(triple.subject)} ", f" {normalize_mention(triple.object)} ")
        for name in names:
            key = f" {normalize_mention(name)} "
            if any(key in own or own in key for own in inside):  # "Alibaba" in "Alibaba Group": the same name
                continue
            if spec.domain in self.classes(name, told):
                return name
        return None

    def classes(self, name: str, told: Iterable[Triple] = ()) -> set[str]:
        """The classes known for ``name``: from the graph the teller sees and from ``told``."""
        found: set[str] = set()
        key = normalize_mention(name)
        for t in told:
            if normalize_mention(t.subject) == key:
                found |= self._side(t.relation, subject=True)
            if normalize_mention(t.object) == key:
                found |= self._side(t.relation, subject=False)
        graph = self.graph()
        if graph is None or not key:
            return found
        try:
            as_subject = graph.facts(name)
            as_object = graph.facts(None, None, name)
        except FactagentError:  # a name the graph cannot look up: nothing known about it
            return found
        for a in as_subject:
            found |= self._side(a.triple.relation, subject=True)
        for a in as_object:
            found |= self._side(a.triple.relation, subject=False)
        return found

    def _agrees(self, name: str, wanted: str | None, told: tuple[Triple, ...]) -> bool:
        if wanted is None:
            return True
        known = self.classes(name, told)
        return not known or any(not self._schema.disjoint(c, wanted) for c in known)

    def _side(self, relation: str, *, subject: bool) -> set[str]:
        if relation not in self._schema:
            return set()
        spec = self._schema.relation(relation)
        cls = spec.domain if subject else spec.range
        return {cls} if cls else set()

    def graph(self) -> KnowledgeGraph | GraphView | None:
        """The graph as the teller reads it (the linker's scope), ``None`` without one."""
        scope = self._linker.scope  # the facts the teller reads: another tenant's never sway a reading
        return self._graph if self._graph is None or scope is None else self._graph.view(scope)
