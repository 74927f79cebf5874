"""Plain pattern queries on an Oxigraph store, answered by index lookups instead of Oxigraph's SPARQL engine.

Why: a bound lookup such as ``SELECT ?o WHERE { GRAPH ?g { ?s rel:r3 ?o } }`` with ``?s`` bound costs Oxigraph
tens of microseconds of query parsing and planning (the text changes with every binding) around one index
probe of a few. :func:`pattern_plan` compiles such a query once per text and set of bound variables into
nested index lookups (``Store.quads_for_pattern``); :meth:`PatternPlan.run` then answers it with the rows
Oxigraph's SPARQL engine would give (the same bag of solutions; SPARQL leaves row order open without
``ORDER BY``), because the lookups use the same index and the same term encoding (typed literals by value).

Which queries (anything else gets ``None`` and goes to Oxigraph's engine unchanged):

* ``SELECT ?v ...`` (listed variables, no ``*``, ``DISTINCT``, ``ORDER BY``, ``LIMIT``, aggregates) or
  ``ASK``, whose WHERE group is a join of triple patterns in the default graph and ``GRAPH ?g|<iri> { triple
  patterns }`` blocks: no FILTER, OPTIONAL, UNION, BIND, VALUES, sub-queries, property paths or blank nodes;
* that Oxigraph itself accepts (checked once per text on an empty in-memory store, so e.g. a prefix only
  rdflib predeclares still raises through the engine path);
* where every triple pattern, taken in the join order chosen here (most bound positions first), has its
  subject or object bound (a constant, a binding or a variable of an earlier pattern): an index probe, never a
  scan that Oxigraph's own planner may do better;
* where a projected variable that the caller binds also occurs in a pattern (its value then comes from the
  store, in the store's canonical form, as Oxigraph's answer would).

The default graph is the store's own default graph (the RDF merge of the named graphs that
:class:`~kg.OxigraphTripleStore` maintains); ``GRAPH ?g`` ranges over named graphs only. Because that default
graph is the merge, a ``GRAPH ?g`` lookup first probes the default graph's one index and stops there when it
finds nothing (``run(..., merged=True)``), instead of always reading both the default and the named-graph
index as ``quads_for_pattern`` with any graph does (most lookups of a sparse graph find nothing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyoxigraph as ox
from rdflib.term import Literal, URIRef, Variable

from kg._store_support import prepare_query

__all__ = ["PatternPlan", "pattern_plan", "plan_for"]

_DEFAULT_GRAPH = ox.DefaultGraph()
_STAR = re.compile(r"\bSELECT\s+(?:DISTINCT\s+|REDUCED\s+)?\*", re.IGNORECASE)


@dataclass(frozen=True)
class _Pattern:
    """One quad pattern: each slot an Oxigraph term (constant) or a variable name (str)."""

    slots: tuple[Any, Any, Any, Any]  # subject, predicate, object, graph (ox.DefaultGraph: the default graph)


_PARTS = ("subject", "predicate", "object", "graph_name")


@dataclass(frozen=True)
class _Step:
    """One pattern in join order, with what is bound when it runs worked out once (the plan is per bound set)."""

    template: tuple[Any, Any, Any, Any]  # constants in place, None where a variable goes
    inputs: tuple[tuple[int, str], ...]  # (slot, variable) bound before this step: filled in per solution
    outputs: tuple[tuple[str, str], ...]  # (quad attribute, variable) first bound by this step
    repeats: tuple[tuple[str, str], ...]  # (quad attribute, variable) a second time in this pattern: must agree
    named_only: bool  # graph slot is a variable bound here: skip the quads of the default graph
    fill: Callable[[Mapping[str, Any]], tuple[Any, Any, Any, Any]] = field(compare=False, repr=False)
    # ``fill(solution)``: the lookup's (s, p, o, g), ``template`` with ``inputs`` taken from ``solution``

    def extend(self, store: ox.Store, solutions: list[Mapping[str, Any]], merged: bool) -> list[Mapping[str, Any]]:
        """Every solution joined with the quads matching this pattern under it (a nested-loop index join).

        ``merged``: the store's default graph is the merge of its named graphs, so a triple pattern with no
        match there has none in any named graph: ``GRAPH ?g`` lookups probe the (one) default-graph index
        first and skip the named-graph index when that finds nothing.
        """
        out: list[Mapping[str, Any]] = []
        fill, outputs, repeats, named_only = self.fill, self.outputs, self.repeats, self.named_only
        probe = merged and named_only
        lookup = store.quads_for_pattern
        for solution in solutions:
            s, p, o, g = fill(solution)
            try:
                if probe and next(lookup(s, p, o, _DEFAULT_GRAPH), None) is None:
                    continue  # most lookups of a sparse graph end here, after one index probe
                quads = lookup(s, p, o, g)
            except TypeError:  # a literal bound where the store holds only IRIs (subject, predicate, graph)
                continue
            for quad in quads:
                if named_only and type(quad.graph_name) is ox.DefaultGraph:
                    continue
                extended = dict(solution)
                for part, name in outputs:
                    extended[name] = getattr(quad, part)
                if not repeats or all(extended[name] == getattr(quad, part) for part, name in repeats):
                    out.append(extended)
        return out


def _filler(
    template: tuple[Any, Any, Any, Any], inputs: tuple[tuple[int, str], ...]
) -> Callable[[Mapping[str, Any]], tuple[Any, Any, Any, Any]]:
    """``fill`` for :class:`_Step`: one bound slot (the usual case) without building a list per lookup."""
    t0, t1, t2, t3 = template
    if not inputs:
        return lambda solution: template
    if len(inputs) == 1:
        slot, name = inputs[0]
        if slot == 0:
            return lambda solution: (solution[name], t1, t2, t3)
        if slot == 1:
            return lambda solution: (t0, solution[name], t2, t3)
        if slot == 2:
            return lambda solution: (t0, t1, solution[name], t3)
        return lambda solution: (t0, t1, t2, solution[name])

    def fill(solution: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        args = list(template)
        for slot, name in inputs:
            args[slot] = solution[name]
        return (args[0], args[1], args[2], args[3])

    return fill


def _step(pattern: _Pattern, known: set[str]) -> _Step:
    template: list[Any] = []
    inputs, outputs, repeats = [], [], []
    fresh: set[str] = set()
    for slot, term in enumerate(pattern.slots):
        if not isinstance(term, str):
            template.append(term)
            continue
        template.append(None)
        if term in known:
            inputs.append((slot, term))
        elif term in fresh:
            repeats.append((_PARTS[slot], term))
        else:
            fresh.add(term)
            outputs.append((_PARTS[slot], term))
    graph = pattern.slots[3]
    slots = (template[0], template[1], template[2], template[3])
    return _Step(
        template=slots,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        repeats=tuple(repeats),
        named_only=isinstance(graph, str) and graph not in known,
        fill=_filler(slots, tuple(inputs)),
    )


@dataclass(frozen=True)
class PatternPlan:
    """A compiled plain pattern query: lookups in join order, then the projection (or ASK)."""

    steps: tuple[_Step, ...]
    projection: tuple[str, ...]  # SELECT variables in order; empty for ASK
    ask: bool

    def run(self, store: ox.Store, bound: Mapping[str, Any], *, merged: bool = False) -> list[tuple[Any, ...]]:
        """Rows of Oxigraph terms (``None`` for an unbound variable); ASK: ``[(True,)]`` or ``[(False,)]``.

        Args:
            store: the Oxigraph store to read.
            bound: the caller's bindings (the names the plan was made for), as Oxigraph terms.
            merged: the store keeps its default graph as the merge of its named graphs (as
                :class:`~kg.OxigraphTripleStore` does); lets ``GRAPH ?g`` lookups that find nothing stop early.
        """
        solutions: list[Mapping[str, Any]] = [bound]  # never changed: each step builds new solutions
        for step in self.steps:
            solutions = step.extend(store, solutions, merged)
            if not solutions:  # most bound lookups of a sparse graph end here, after one index probe
                return [(False,)] if self.ask else []
        if self.ask:
            return [(True,)]
        names = self.projection
        return [tuple(map(solution.get, names)) for solution in solutions]


def _ox_constant(term: object, position: int) -> Any:
    """An rdflib constant of a pattern as an Oxigraph term; ``None`` when this module does not handle it."""
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, Literal) and position == 2:
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype is not None:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    return None


def _groups(node: Any) -> list[tuple[Any, Any]] | None:
    """The WHERE group as (graph term or None for the default graph, BGP) parts, or None if not plain."""
    name = getattr(node, "name", None)
    if name == "BGP":
        return [(None, node)]
    if name == "Graph" and getattr(node.p, "name", None) == "BGP" and isinstance(node.term, (Variable, URIRef)):
        return [(node.term, node.p)]
    if name == "Join":
        left, right = _groups(node.p1), _groups(node.p2)
        return None if left is None or right is None else left + right
    return None


def _patterns(groups: list[tuple[Any, Any]]) -> list[_Pattern] | None:
    patterns: list[_Pattern] = []
    for graph, bgp in groups:
        if graph is None:
            graph_slot: Any = _DEFAULT_GRAPH
        else:
            graph_slot = str(graph) if isinstance(graph, Variable) else ox.NamedNode(str(graph))
        for triple in bgp.triples:
            slots: list[Any] = []
            for position, term in enumerate(triple):
                if isinstance(term, Variable):
                    slots.append(str(term))
                elif (constant := _ox_constant(term, position)) is not None:
                    slots.append(constant)
                else:
                    return None  # a blank node, a property path, a literal outside the object
            slots.append(graph_slot)
            patterns.append(_Pattern(slots=(slots[0], slots[1], slots[2], slots[3])))
    return patterns or None


def _join_order(patterns: list[_Pattern], bound: set[str]) -> list[_Step] | None:
    """Most bound slots first; None when some pattern would have neither subject nor object bound."""
    ordered: list[_Step] = []
    left = list(patterns)
    known = set(bound)

    def bound_slots(pattern: _Pattern) -> list[bool]:
        return [not isinstance(slot, str) or slot in known for slot in pattern.slots]

    while left:
        best = max(left, key=lambda pattern: (sum(bound_slots(pattern)[:3]), -left.index(pattern)))
        flags = bound_slots(best)
        if not (flags[0] or flags[2]):
            return None
        ordered.append(_step(best, known))
        left.remove(best)
        known.update(slot for slot in best.slots if isinstance(slot, str))
    return ordered


@lru_cache(maxsize=1)
def _validator() -> ox.Store:
    """An empty in-memory store on which Oxigraph parses (and trivially runs) a query text."""
    return ox.Store()


@lru_cache(maxsize=1024)
def pattern_plan(sparql: str, bound_names: frozenset[str]) -> PatternPlan | None:
    """The plan for ``sparql`` with ``bound_names`` bound, or ``None`` when it is not a plain pattern query.

    Raises:
        QueryError: ``sparql`` is not a query a store runs (:func:`kg._store_support.prepare_query`).
    """
    algebra = prepare_query(sparql).algebra
    if algebra.name not in ("SelectQuery", "AskQuery") or getattr(algebra.p, "name", None) != "Project":
        return None
    ask = algebra.name == "AskQuery"
    if not ask and _STAR.search(sparql):
        return None  # SELECT *: the column order is Oxigraph's, not rdflib's
    groups = _groups(algebra.p.p)
    patterns = _patterns(groups) if groups is not None else None
    if patterns is None:
        return None
    ordered = _join_order(patterns, set(bound_names))
    if ordered is None:
        return None
    projection = () if ask else tuple(str(variable) for variable in algebra.p.PV)
    in_patterns = {slot for pattern in patterns for slot in pattern.slots if isinstance(slot, str)}
    if any(name in bound_names and name not in in_patterns for name in projection):
        return None
    try:
        _validator().query(sparql)
    except (SyntaxError, ValueError, OSError):
        return None  # Oxigraph rejects it: the engine path raises the store's error
    return PatternPlan(steps=tuple(ordered), projection=projection, ask=ask)


_PLANS: dict[tuple[str, tuple[str, ...]], PatternPlan | None] = {}
_PLANS_MAX = 4096
_UNSEEN: Any = object()  # a cached None means "not a plain pattern query"


def plan_for(sparql: str, bound_names: tuple[str, ...]) -> PatternPlan | None:
    """:func:`pattern_plan` for the bindings' names in their order: one dict lookup per query once seen.

    (The lookups a store answers cost a few microseconds; building a ``frozenset`` and going through the
    ``lru_cache`` wrapper was a tenth of that.) The cache is dropped whole when it holds ``_PLANS_MAX`` keys.

    Raises:
        QueryError: as :func:`pattern_plan`.
    """
    key = (sparql, bound_names)
    plan = _PLANS.get(key, _UNSEEN)
    if plan is _UNSEEN:
        plan = pattern_plan(sparql, frozenset(bound_names))
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan
