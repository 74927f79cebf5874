"""Undoing one edit exactly: the quads it wrote go, the quads it changed come back.

An edit (all adds sharing a ``Provenance.edit_id``) wrote: assertion graphs and their provenance, triples in
``FA.current``, entity labels and aliases (journaled in the edit's graph, per namespace), and ``invalidAt`` /
``invalidatedBy`` on the assertions it superseded (whose triples it took out of ``FA.current``). Undoing
those, edits rolled back newest first leave the store's quad set exactly as it was before each edit.
"""

from __future__ import annotations

import logging

from rdflib import Literal
from rdflib.namespace import RDFS
from rdflib.term import Node, URIRef

from kg._names import names_graph
from kg._provenance import is_assertion_graph, journal_graph
from kg._records import WORLD_NAMESPACE
from kg._store import Quad, TripleStore
from kg._vocab import FA
from tools.errors import NotFoundError

__all__ = ["rollback_edit"]

logger = logging.getLogger(__name__)


def rollback_edit(store: TripleStore, edit_id: str) -> int:
    """Remove what ``edit_id`` wrote and restore what it invalidated; call inside a store transaction.

    Returns:
        Assertions removed plus assertions restored.

    Raises:
        NotFoundError: the store holds nothing written by ``edit_id``.
    """
    edit = Literal(edit_id)
    written = {q[0] for q in store.quads(None, FA.editId, edit, FA.provenance) if is_assertion_graph(q[0])}
    invalidated = {q[0] for q in store.quads(None, FA.invalidatedBy, edit, FA.provenance) if is_assertion_graph(q[0])}
    invalidated -= written
    main = journal_graph(edit_id)
    journal = list(store.quads(None, None, None, main))
    # names journaled per namespace (kg/_names.py): the main journal lists the tenant namespaces it wrote in
    tenants = sorted(str(q[2]) for q in journal if q[0] == main and q[1] == FA.namespace)
    names: list[tuple[str | None, list[Quad]]] = [(None, [q for q in journal if q[0] != main])]
    names += [(ns, list(store.quads(None, None, None, journal_graph(edit_id, ns)))) for ns in tenants]
    if not (written or invalidated or journal):
        raise NotFoundError(f"no edit {edit_id!r} in the knowledge graph")

    removes: list[Quad] = list(journal)
    adds: list[Quad] = []
    was_current: set[tuple[Node, Node, Node]] = set()
    for g in written:
        triples = list(store.quads(None, None, None, g))
        provenance = list(store.quads(g, None, None, FA.provenance))
        removes += triples + provenance
        if not any(q[1] == FA.invalidAt for q in provenance):
            was_current.update(q[:3] for q in triples)
    restored: set[tuple[Node, Node, Node]] = set()
    for g in invalidated:
        removes += [q for q in store.quads(g, None, None, FA.provenance) if q[1] in (FA.invalidAt, FA.invalidatedBy)]
        restored.update(q[:3] for q in store.quads(None, None, None, g))
    adds += [(s, p, o, FA.current) for s, p, o in sorted(restored)]

    def still_asserted(s: Node, p: Node, o: Node) -> bool:
        """Another assertion, outside this edit, keeps the triple valid (only after out-of-order rollbacks)."""
        for *_, g in store.quads(s, p, o, None):
            if not is_assertion_graph(g) or g in written:
                continue
            if g in invalidated or next(iter(store.quads(g, FA.invalidAt, None, FA.provenance)), None) is None:
                return True
        return False

    removes += [(s, p, o, FA.current) for s, p, o in was_current - restored if not still_asserted(s, p, o)]

    for namespace, quads in names:
        graph = names_graph(namespace)
        removes += quads if namespace is not None else []
        for s, p, o, _ in quads:
            if p != RDFS.label or not isinstance(s, URIRef):
                removes.append((s, p, o, graph))  # an alias the edit added
                continue
            if _used_elsewhere(store, s, written, namespace or WORLD_NAMESPACE):
                logger.warning("rollback of %s keeps entity %s: a later assertion still uses it", edit_id, s)
                continue
            # The entity goes with every name it has there (aliases added later without an edit id included).
            removes += store.quads(s, None, None, graph)
    store.remove(removes)
    store.add(adds)
    return len(written) + len(invalidated)


def _used_elsewhere(store: TripleStore, entity: URIRef, written: set[URIRef], namespace: str) -> bool:
    """Whether an assertion of ``namespace`` outside this edit names ``entity`` (and so needs its names there)."""
    for quad in [*store.quads(entity, None, None, None), *store.quads(None, None, entity, None)]:
        if is_assertion_graph(quad[3]) and quad[3] not in written:
            marked = [str(q[2]) for q in store.quads(quad[3], FA.namespace, None, FA.provenance)]
            if (marked[0] if marked else WORLD_NAMESPACE) == namespace:
                return True
    return False
