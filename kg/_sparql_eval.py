"""Running SELECT/ASK with rdflib's engine over a local quad store, fast for one-graph-per-assertion data.

rdflib evaluates ``GRAPH ?g { P }`` by evaluating ``P`` once in every named graph. The knowledge graph keeps
one named graph per assertion, so that is one pass per assertion for every such pattern. :func:`_eval_graph`
(registered in ``rdflib.plugins.sparql.CUSTOM_EVALS``, only for :class:`QuadDataset` instances) first asks
the store which graphs hold a triple ``P`` cannot match without, then evaluates ``P`` in those graphs only,
exactly as rdflib would (same solutions, same multiplicities).

The default graph of a query is the union of all named graphs (``default_union``): a pattern outside
``GRAPH`` matches a triple if any named graph holds it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

from rdflib.graph import Dataset
from rdflib.term import Identifier, Node, URIRef

from kg._store_support import prepare_query, result_rows
from tools.errors import QueryError

__all__ = ["QuadDataset", "register_graph_eval", "run_query"]

_registered = False


class QuadDataset(Dataset):
    """An rdflib Dataset (union default graph) whose ``GRAPH ?g`` patterns use the quad index."""

    def __init__(self, store: Any = "default") -> None:
        super().__init__(store=store, default_union=True)

    def graphs_matching(self, subject: Node | None, predicate: Node | None, obj: Node | None) -> set[URIRef]:
        """Named graphs holding a triple that matches the pattern (the store's own index when it has one)."""
        own = getattr(self.store, "graphs_matching", None)
        if own is not None:
            return set(own(subject, predicate, obj))
        return {g for _, _, _, g in self.quads_matching(subject, predicate, obj)}

    def quads_matching(
        self, subject: Node | None, predicate: Node | None, obj: Node | None
    ) -> Iterator[tuple[Node, Node, Node, URIRef]]:
        """Every quad matching the triple pattern, in any named graph."""
        own = getattr(self.store, "quads_matching", None)
        if own is not None:
            yield from own(subject, predicate, obj)
            return
        for s, p, o, g in self.quads((subject, predicate, obj, None)):
            if isinstance(g, URIRef):
                yield s, p, o, g


def _required_triples(part: Any) -> list[tuple[Any, Any, Any]]:
    """Triple patterns every solution of ``part`` must match in the same graph (paths excluded)."""
    name = getattr(part, "name", None)
    if name == "BGP":
        return [t for t in part.triples if not hasattr(t[1], "eval")]  # property paths have .eval
    if name in ("Filter", "Extend", "Project", "Distinct", "Reduced", "Slice", "OrderBy", "ToMultiSet"):
        return _required_triples(part.p)
    if name in ("Join", "LeftJoin", "Minus"):
        return _required_triples(part.p1) or (_required_triples(part.p2) if name == "Join" else [])
    return []


def _eval_graph(ctx: Any, part: Any) -> Generator[Any, None, None]:
    """``GRAPH ?g { P }`` evaluated only in the graphs that can hold a solution of ``P``."""
    from rdflib.plugins.sparql.evaluate import _join, evalBGP, evalPart

    if part.name != "Graph" or not isinstance(ctx.dataset, QuadDataset) or ctx[part.term] is not None:
        raise NotImplementedError  # rdflib's own evaluation
    required = _required_triples(part.p)
    if not required:
        raise NotImplementedError
    if part.p.name == "BGP":
        return _bgp_in_graphs(ctx, part, required[0], evalBGP)
    s, p, o = required[0]
    graphs = ctx.dataset.graphs_matching(ctx[s], ctx[p], ctx[o])
    return _in_graphs(ctx, part, sorted(graphs), _join, evalPart)


def _in_graphs(ctx: Any, part: Any, graphs: list[URIRef], join: Any, eval_part: Any) -> Generator[Any, None, None]:
    # Mirrors rdflib.plugins.sparql.evaluate.evalGraph's loop over named graphs.
    ctx = ctx.clone()
    prev_graph = ctx.graph
    for identifier in graphs:
        inner = ctx.pushGraph(ctx.dataset.get_context(identifier)).push()
        for solution in join(eval_part(inner, part.p), [{part.term: identifier}]):
            solution.ctx.graph = prev_graph
            yield solution


def _bgp_in_graphs(ctx: Any, part: Any, first: Any, eval_bgp: Any) -> Generator[Any, None, None]:
    """``GRAPH ?g { BGP }``: match one triple pattern against all quads once, the rest inside each graph.

    Same solutions as rdflib's per-graph loop: ``?g`` is bound to the quad's graph before the rest of the
    pattern is matched in that graph (binding it first or joining it after gives the same solutions).
    """
    from rdflib.plugins.sparql.sparql import AlreadyBound

    rest = [t for t in part.p.triples if t is not first]
    ctx = ctx.clone()
    prev_graph = ctx.graph
    s, p, o = first
    bound = (ctx[s], ctx[p], ctx[o])
    for qs, qp, qo, qg in ctx.dataset.quads_matching(*bound):
        inner = ctx.pushGraph(ctx.dataset.get_context(qg)).push()
        try:
            inner[part.term] = qg
            for var, value, known in ((s, qs, bound[0]), (p, qp, bound[1]), (o, qo, bound[2])):
                if known is None:
                    inner[var] = value
        except AlreadyBound:  # a variable repeated in the pattern with different values
            continue
        for solution in eval_bgp(inner, rest):
            solution.ctx.graph = prev_graph
            yield solution


def register_graph_eval() -> None:
    """Let rdflib evaluate ``GRAPH ?g`` through the quad index for every :class:`QuadDataset` (idempotent)."""
    global _registered
    if not _registered:
        from rdflib.plugins.sparql import CUSTOM_EVALS

        CUSTOM_EVALS["factagent_graph_index"] = _eval_graph
        _registered = True


def run_query(dataset: QuadDataset, sparql: str, bindings: Mapping[str, Identifier]) -> list[Sequence[Node | None]]:
    """Evaluate a checked SELECT/ASK over ``dataset`` and materialise the rows.

    Raises:
        QueryError: malformed query, or rdflib rejects it during evaluation.
    """
    from rdflib.plugins.sparql.sparql import SPARQLError

    prepared = prepare_query(sparql)
    register_graph_eval()
    try:
        return result_rows(dataset.query(prepared, initBindings=dict(bindings)))
    except SPARQLError as exc:
        raise QueryError(f"SPARQL evaluation failed: {exc}") from exc
