"""Checking user SPARQL and turning Python values into bound RDF terms.

User values never reach the query text: they become typed rdflib terms bound to variables, which the store
passes to the SPARQL engine as initial bindings (or ``VALUES``), so a label such as
``x" } ; DROP ALL ; #`` is only ever data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from rdflib import Literal
from rdflib.term import Identifier, URIRef

from kg._schema import Schema
from kg._vocab import FA, iri
from tools.errors import InvalidInputError, QueryError

__all__ = ["Binding", "check_select", "path_query", "to_terms"]

Binding = str | int | float | datetime | Identifier
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_QUERY = 100_000
MAX_HOPS = 8


def to_terms(bindings: Mapping[str, Binding] | None) -> dict[str, Identifier]:
    """Typed terms for ``bindings``: str -> plain literal, int/float/bool -> typed literal, aware datetime ->
    ``xsd:dateTime`` (in UTC), rdflib terms as they are (IRIs validated); use :func:`kg.iri` for an IRI.

    Raises:
        InvalidInputError: a bad variable name, a naive datetime, an invalid IRI, or an unsupported type.
    """
    terms: dict[str, Identifier] = {}
    for name, value in (bindings or {}).items():
        if not isinstance(name, str) or not _VAR.match(name):
            raise InvalidInputError(f"bad SPARQL variable name {name!r} (letters, digits, _; no '?')")
        terms[name] = _term(name, value)
    return terms


def _term(name: str, value: Any) -> Identifier:
    if isinstance(value, URIRef):
        return iri(str(value))
    if isinstance(value, Identifier):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInputError(f"binding {name}: datetimes must be timezone-aware")
        return Literal(value.astimezone(UTC))
    if isinstance(value, str):
        if len(value) > MAX_QUERY or any("\ud800" <= ch <= "\udfff" for ch in value):
            raise InvalidInputError(f"binding {name}: longer than {MAX_QUERY} characters or holds a lone surrogate")
        return Literal(value)
    if isinstance(value, bool | int | float):
        return Literal(value)
    raise InvalidInputError(f"binding {name}: unsupported type {type(value).__name__}")


def check_select(sparql: str) -> None:
    """Accept only a SPARQL SELECT that reads this store.

    ``FROM`` / ``FROM NAMED`` and ``SERVICE`` are refused: rdflib would fetch those IRIs over the network.

    Raises:
        QueryError: not a string, too long, malformed, not a SELECT, or it names another dataset or service.
    """
    if not isinstance(sparql, str) or not sparql.strip():
        raise QueryError("a SPARQL query must be a non-empty string")
    if len(sparql) > MAX_QUERY:
        raise QueryError(f"a SPARQL query must be at most {MAX_QUERY} characters")
    _check_parsed(sparql)


@lru_cache(maxsize=256)  # parsing costs milliseconds; a caller repeats the same few queries
def _check_parsed(sparql: str) -> None:
    from pyparsing import ParseBaseException, ParseResults
    from rdflib.plugins.sparql.parser import parseQuery
    from rdflib.plugins.sparql.parserutils import CompValue

    try:
        parsed = parseQuery(sparql)
    except ParseBaseException as exc:
        raise QueryError(f"malformed SPARQL: {exc}") from exc
    body = parsed[1]
    if not isinstance(body, CompValue) or body.name != "SelectQuery":
        raise QueryError(f"only SELECT queries are allowed, got {getattr(body, 'name', type(body).__name__)}")
    if "datasetClause" in body:  # CompValue.get returns the key itself when it is absent
        raise QueryError("FROM / FROM NAMED are not allowed: queries run on this graph's own dataset")

    def walk(node: object) -> None:
        if isinstance(node, CompValue):
            if node.name == "ServiceGraphPattern":
                raise QueryError("SERVICE is not allowed: queries run on this graph's own dataset")
            for child in node.values():
                walk(child)
        elif isinstance(node, list | tuple | ParseResults):
            for child in node:
                walk(child)

    walk(body)


def path_query(schema: Schema, path: Sequence[str]) -> str:
    """``SELECT DISTINCT ?o`` over ``FA.current`` following ``path`` from the bound ``?s``.

    Each step is a relation id, IRI or Wikidata id, with a leading ``^`` for the inverse direction. Only
    schema IRIs enter the query text.

    Raises:
        InvalidInputError: an empty or too long path, or an unknown relation.
    """
    if isinstance(path, str) or not path:
        raise InvalidInputError("path must be a non-empty sequence of relation ids")
    if len(path) > MAX_HOPS:
        raise InvalidInputError(f"path is longer than {MAX_HOPS} hops")
    steps = []
    for step in path:
        if not isinstance(step, str):
            raise InvalidInputError(f"path step must be a relation id, got {step!r}")
        inverse = step.startswith("^")
        spec = schema.relation(step[1:] if inverse else step)
        steps.append(("^" if inverse else "") + f"<{spec.iri}>")
    return f"SELECT DISTINCT ?o WHERE {{ GRAPH <{FA.current}> {{ ?s {'/'.join(steps)} ?o }} }}"
