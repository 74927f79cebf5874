"""Entity names per namespace: which labels and aliases a reader of some namespaces may see.

A name (``rdfs:label`` or ``skos:altLabel`` of an entity) is written into the names graph of the namespace
of the fact that introduced it: ``FA.entities`` for the shared :data:`~kg.WORLD_NAMESPACE` (where every name
written before names were namespaced also lives), ``NAMES + <namespace>`` for a tenant. A reader sees the
names of its namespaces only, so a spelling or alias one tenant wrote never links, resolves or is suggested
for another (the same entity IRI may be named in several namespaces: the IRI is derived from the label).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rdflib import Namespace
from rdflib.term import Node, URIRef

from kg._records import WORLD_NAMESPACE, Entity
from kg._store import Quad, TripleStore
from kg._vocab import FA

__all__ = ["NAMES", "entities_of", "is_names_graph", "name_quads", "names_graph", "namespace_of_names"]

NAMES = Namespace("https://factagent.dev/names/")


def names_graph(namespace: str | None) -> URIRef:
    """The graph holding the names written in ``namespace`` (``None``: the world's, ``FA.entities``)."""
    if namespace is None or namespace == WORLD_NAMESPACE:
        return URIRef(FA.entities)
    return URIRef(NAMES + namespace)


def is_names_graph(graph: Node) -> bool:
    return isinstance(graph, URIRef) and (graph == FA.entities or str(graph).startswith(str(NAMES)))


def namespace_of_names(graph: Node) -> str:
    """The namespace whose names ``graph`` holds (the inverse of :func:`names_graph`)."""
    text = str(graph)
    return text[len(str(NAMES)) :] if text.startswith(str(NAMES)) else WORLD_NAMESPACE


def name_quads(
    store: TripleStore, s: Node | None, p: Node | None, o: Node | None, namespaces: Sequence[str] | None
) -> list[Quad]:
    """Name quads matching the pattern in the names graphs of ``namespaces`` (``None``: every namespace)."""
    if namespaces is None:
        return [q for q in store.quads(s, p, o, None) if is_names_graph(q[3])]
    graphs = dict.fromkeys(names_graph(n) for n in namespaces)
    return [q for g in graphs for q in store.quads(s, p, o, g)]


def entities_of(labels: Iterable[Quad], aliases: Iterable[Quad]) -> list[tuple[str, Entity]]:
    """(namespace, entity as that namespace names it) for label and alias quads, sorted by namespace and IRI."""
    named: dict[tuple[str, str], list[str]] = {}
    for s, _, o, g in aliases:
        named.setdefault((namespace_of_names(g), str(s)), []).append(str(o))
    rows = sorted({(namespace_of_names(g), str(s), str(o)) for s, _, o, g in labels})
    return [(ns, Entity(node, label, tuple(sorted(set(named.get((ns, node), [])))))) for ns, node, label in rows]
