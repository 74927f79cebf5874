"""Namespaces of the knowledge graph, and the mapping between entity labels and IRIs.

``FA`` is the project vocabulary (provenance predicates, the special named graphs), ``ENT`` holds entities,
``REL`` relations and ``GRAPH`` the one-triple named graph of each assertion. An entity's IRI is its label,
percent-encoded, with spaces written as ``_`` (and a literal ``_`` as ``%5F``), so the mapping is reversible
and any label, in any script, makes a valid IRI::

    >>> entity_iri("Jane Roe")
    rdflib.term.URIRef('https://factagent.dev/entity/Jane_Roe')
    >>> label_of(entity_iri("snake_case name"))
    'snake_case name'
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote, unquote

from rdflib import Namespace
from rdflib.term import URIRef

from kg._store_support import check_term
from tools.base import unsafe_character
from tools.errors import InvalidInputError

__all__ = [
    "ENT",
    "FA",
    "GRAPH",
    "REL",
    "WD",
    "check_text",
    "entity_iri",
    "iri",
    "is_entity_iri",
    "label_of",
]

FA = Namespace("https://factagent.dev/ns#")
ENT = Namespace("https://factagent.dev/entity/")
REL = Namespace("https://factagent.dev/rel/")
GRAPH = Namespace("https://factagent.dev/graph/")
WD = Namespace("http://www.wikidata.org/prop/direct/")

MAX_LABEL = 1_000


def check_text(value: object, what: str, max_len: int = MAX_LABEL) -> str:
    """Return ``value`` stripped of surrounding whitespace, or reject it.

    Raises:
        InvalidInputError: not a string, empty, longer than ``max_len``, with control characters, bidi
            controls or lone surrogates (see :func:`memory.unsafe_character`).
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidInputError(f"{what} must not be empty")
    if len(text) > max_len:
        raise InvalidInputError(f"{what} is longer than {max_len} characters")
    for ch in text:
        if unicodedata.category(ch) == "Cc":  # a label is one line: no newline or tab either
            raise InvalidInputError(f"{what} contains the control character {ch!r}")
    bad = unsafe_character(text)  # the stored-text rule shared with the vector memory (bidi controls too)
    if bad is not None:
        raise InvalidInputError(f"{what} contains {bad}")
    return text


def iri(value: str) -> URIRef:
    """An IRI term for SPARQL bindings and lookups, validated.

    Raises:
        InvalidInputError: not an absolute IRI, or it holds spaces, controls or ``<>"{}|\\^``` characters.

    Example:
        >>> iri("https://factagent.dev/entity/Paris")
        rdflib.term.URIRef('https://factagent.dev/entity/Paris')
    """
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"an IRI must be a non-empty string, got {value!r}")
    if len(value) > 8 * MAX_LABEL:
        raise InvalidInputError("an IRI is longer than 8000 characters")
    term = URIRef(value)
    check_term(term, "IRI", iri_only=True)  # the stores' own definition of a valid IRI
    return term


def entity_iri(label: str) -> URIRef:
    """The IRI of the entity named ``label`` (validated and stripped as by :func:`check_text`)."""
    text = check_text(label, "entity label")
    # quote() leaves "_" alone, so it is encoded first; then spaces (quoted as %20) become "_".
    return URIRef(ENT + quote(text, safe="").replace("_", "%5F").replace("%20", "_"))


def is_entity_iri(value: str) -> bool:
    return value.startswith(str(ENT)) and len(value) > len(str(ENT))


def label_of(entity: str) -> str:
    """The label an entity IRI was made from (the inverse of :func:`entity_iri`)."""
    if not is_entity_iri(entity):
        raise InvalidInputError(f"not an entity IRI: {entity!r}")
    return unquote(entity[len(str(ENT)) :].replace("_", " "), errors="strict")
