"""What every :class:`~kg.TripleStore` implementation shares: input checks, the term codec, query preparation.

* Quads and patterns are checked before anything is written (:class:`InvalidInputError`, nothing changed).
  Terms are IRIs (absolute, no characters SPARQL or N-Triples would have to escape) and literals; blank
  nodes are refused because a remote endpoint cannot address them.
* :func:`encode_term` writes one canonical single-line N-Triples form. The SQLite store keys its term table
  on it and the remote store builds SPARQL text from it, so an escaped literal can never end a string early.
* :func:`prepare_query` parses SPARQL once per distinct text (rdflib's parser costs milliseconds) and
  refuses what a store must not run: updates, CONSTRUCT/DESCRIBE, ``FROM`` clauses and ``SERVICE`` (both make
  rdflib fetch URLs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rdflib.term import BNode, Identifier, Literal, Node, URIRef

from kg._store import Quad
from tools.errors import InvalidInputError, QueryError

if TYPE_CHECKING:
    from rdflib.plugins.sparql.sparql import Query

__all__ = [
    "bind_values",
    "check_bindings",
    "check_pattern",
    "check_quads",
    "decode_term",
    "encode_term",
    "prepare_query",
    "result_rows",
]

# An absolute IRI without whitespace, controls or the characters N-Triples/SPARQL IRIREF excludes.
# An absolute IRI without the characters RFC 3987 forbids (controls, space, <>"{}|^`\): the one definition
# of a valid IRI, used for stored terms and (through kg._vocab.iri) for IRIs a caller passes in.
_IRI = re.compile(r'[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20<>"{}|^`\\\x7f-\x9f]*')
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE = re.compile(r'[\\"\n\r\t]')
_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
_UNESCAPE = re.compile(r'\\(["\\nrt])')
MAX_TERM_CHARS = 100_000
RDFLIB_DEFAULT_GRAPH = URIRef("urn:x-rdflib:default")  # rdflib.graph.DATASET_DEFAULT_GRAPH_ID


def _check_text(text: str, what: str) -> None:
    if len(text) > MAX_TERM_CHARS:
        raise InvalidInputError(f"{what} is longer than {MAX_TERM_CHARS} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{what} is not valid Unicode (lone surrogate?): {exc}") from exc


def check_term(term: object, what: str, *, iri_only: bool = False) -> Node:
    """Return ``term`` if a store can hold it.

    Raises:
        InvalidInputError: a blank node, variable, non-rdflib value, relative or unsafe IRI, or bad text.
    """
    if isinstance(term, URIRef):
        text = str(term)
        if len(text) > MAX_TERM_CHARS or not text.isascii():  # ASCII text is valid Unicode: skip encoding it
            _check_text(text, what)
        if not _IRI.fullmatch(text):
            raise InvalidInputError(f'{what} is not an absolute IRI without spaces or <>"{{}}|^`\\: {term!r}')
        return term
    if isinstance(term, Literal) and not iri_only:
        _check_text(str(term), what)
        if term.datatype is not None:
            check_term(term.datatype, f"{what} datatype", iri_only=True)
        return term
    if isinstance(term, BNode):
        raise InvalidInputError(f"{what} is a blank node; stores hold IRIs and literals only")
    kind = "an IRI (URIRef)" if iri_only else "an IRI (URIRef) or a Literal"
    raise InvalidInputError(f"{what} must be {kind}, got {type(term).__name__}: {term!r}")


def check_quads(quads: Iterable[Quad]) -> list[Quad]:
    """Materialise and check a batch of quads (subject, predicate, graph: IRIs; object: IRI or literal).

    Raises:
        InvalidInputError: any quad is malformed; the caller must then write nothing.
    """
    if isinstance(quads, (str, bytes)):
        raise InvalidInputError("quads must be an iterable of (s, p, o, graph) tuples, not a string")
    checked: list[Quad] = []
    for quad in quads:
        if not isinstance(quad, tuple) or len(quad) != 4:
            raise InvalidInputError(f"a quad is a 4-tuple (s, p, o, graph), got {quad!r}")
        s, p, o, g = quad
        check_term(s, "subject", iri_only=True)
        check_term(p, "predicate", iri_only=True)
        check_term(o, "object")
        check_term(g, "graph", iri_only=True)
        if g == RDFLIB_DEFAULT_GRAPH:
            raise InvalidInputError(f"{g} is rdflib's default graph; quads go into named graphs")
        checked.append((s, p, o, g))
    return checked


def check_pattern(subject: object, predicate: object, obj: object, graph: object) -> None:
    """Check a quad pattern (``None`` is a wildcard).

    Raises:
        InvalidInputError: a bound position holds something no quad could contain.
    """
    for term, what, iri_only in (
        (subject, "subject", True),
        (predicate, "predicate", True),
        (obj, "object", False),
        (graph, "graph", True),
    ):
        if term is not None:
            check_term(term, what, iri_only=iri_only)


_VALID_NAMES: set[str] = set()  # variable names already checked (queries reuse a few; bounded below)


def check_bindings(bindings: Mapping[str, Identifier] | None) -> dict[str, Identifier]:
    """Check query bindings: plain variable names (no ``?``) to IRIs or literals.

    Raises:
        QueryError: a bad variable name or value.
    """
    if bindings is None:
        return {}
    if type(bindings) is not dict and not isinstance(bindings, Mapping):  # (the ABC check is the slow one)
        raise QueryError(f"bindings must be a mapping of variable name to rdflib term, got {type(bindings).__name__}")
    checked: dict[str, Identifier] = {}
    for name, value in bindings.items():
        if type(name) is not str or name not in _VALID_NAMES:
            if not isinstance(name, str) or not _VARIABLE.fullmatch(name):
                raise QueryError(f"binding name must be a SPARQL variable name without '?', got {name!r}")
            if type(name) is str and len(_VALID_NAMES) < 4096:
                _VALID_NAMES.add(name)
        # an IRI as check_term accepts it (the common case, checked here without a copy or a message first)
        if not (type(value) is URIRef and len(value) <= MAX_TERM_CHARS and value.isascii() and _IRI.fullmatch(value)):
            try:
                check_term(value, f"binding ?{name}")
            except InvalidInputError as exc:
                raise QueryError(str(exc)) from exc
        checked[name] = value
    return checked


def encode_term(term: Node) -> str:
    """The canonical one-line N-Triples form of a checked IRI or literal (also valid SPARQL).

    Example:
        >>> encode_term(Literal('say "hi"', lang="en"))
        '"say \\\\"hi\\\\""@en'
    """
    if isinstance(term, URIRef):
        return f"<{term}>"
    if isinstance(term, Literal):
        text = '"' + _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], str(term)) + '"'
        if term.language:
            return f"{text}@{term.language}"
        if term.datatype is not None:
            return f"{text}^^<{term.datatype}>"
        return text
    raise InvalidInputError(f"cannot encode {type(term).__name__} {term!r}")


@lru_cache(maxsize=200_000)
def decode_term(text: str) -> Node:
    """Inverse of :func:`encode_term` (cached: the mapping is a pure function of the text)."""
    if text.startswith("<"):
        return URIRef(text[1:-1])
    end = text.rindex('"')
    lexical = _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], text[1:end])
    suffix = text[end + 1 :]
    if suffix.startswith("@"):
        return Literal(lexical, lang=suffix[1:])
    if suffix.startswith("^^<"):
        return Literal(lexical, datatype=URIRef(suffix[3:-1]))
    return Literal(lexical)


def _walk(node: Any) -> Iterable[Any]:
    """Every algebra node below ``node`` (CompValue is a dict subclass; lists hold parts)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


@lru_cache(maxsize=512)
def prepare_query(sparql: str) -> Query:
    """Parse and translate a SELECT or ASK query once per distinct text.

    Raises:
        QueryError: not a string, malformed, an unknown prefix, not SELECT/ASK, or it uses FROM / SERVICE.
    """
    from pyparsing import ParseException
    from rdflib.plugins.sparql import prepareQuery

    if not isinstance(sparql, str) or not sparql.strip():
        raise QueryError("a SPARQL query must be a non-empty string")
    try:
        query = prepareQuery(sparql)
    except ParseException as exc:
        raise QueryError(f"malformed SPARQL: {exc}") from exc
    except Exception as exc:  # rdflib raises bare Exception for e.g. unknown prefixes; translated, not swallowed
        raise QueryError(f"invalid SPARQL: {exc}") from exc
    kind = query.algebra.name
    if kind not in ("SelectQuery", "AskQuery"):
        raise QueryError(f"only SELECT and ASK queries are supported, got {kind.removesuffix('Query').upper()}")
    if query.algebra.get("datasetClause"):
        raise QueryError("FROM / FROM NAMED clauses are not supported: queries run over the whole store")
    if any(getattr(part, "name", None) == "ServiceGraphPattern" for part in _walk(query.algebra)):
        raise QueryError("SERVICE clauses are not supported")
    return query


def _group_start(sparql: str) -> int:
    """Index just after the ``{`` that opens the query's WHERE group (strings and IRIs are skipped)."""
    i, n = 0, len(sparql)
    while i < n:
        char = sparql[i]
        if char == "#":  # a comment runs to the end of the line
            end = sparql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if char in "\"'":
            quote = char * 3 if sparql.startswith(char * 3, i) else char
            i += len(quote)
            while i < n and not sparql.startswith(quote, i):
                i += 2 if sparql[i] == "\\" else 1
            i += len(quote)
            continue
        if char == "<":
            match = _IRIREF.match(sparql, i)
            if match:
                i = match.end()
                continue
        if char == "{":
            return i + 1
        i += 1
    raise QueryError("the query has no WHERE group to bind values in")


_IRIREF = re.compile(r'<[^<>"{}|^`\\\x00-\x20]*>')


def bind_values(sparql: str, bindings: Mapping[str, Identifier]) -> str:
    """``sparql`` with checked ``bindings`` as a ``VALUES`` block opening its WHERE group.

    Placed first in the group, the values bind the variables before the rest of the group runs (as rdflib's
    ``initBindings`` do), so ``BIND(?n + 1 AS ?x)`` sees ``?n``; a trailing ``VALUES`` would be joined only
    after the group. Terms are written by :func:`encode_term`, never pasted from caller text.
    """
    if not bindings:
        return sparql
    at = _group_start(sparql)
    names = " ".join(f"?{name}" for name in bindings)
    values = " ".join(encode_term(value) for value in bindings.values())
    return f"{sparql[:at]} VALUES ({names}) {{ ({values}) }} {sparql[at:]}"


def result_rows(result: Any) -> list[Sequence[Node | None]]:
    """An rdflib query ``Result`` as the store contract's rows (ASK: one row holding a boolean Literal)."""
    if result.type == "ASK":
        return [(Literal(bool(result.askAnswer)),)]
    return [tuple(row) for row in result]
