"""An entity's name in a given language: ``skos:prefLabel "法国"@zh`` beside its label ``"France"``.

An entity's ``rdfs:label`` is the name its IRI is made from (the world's English name) and stays its name for
every reader that asks for no language. A name in another language is a language-tagged ``skos:prefLabel``
(SKOS: at most one per language), written into the same names graph as the entity's other names
(``kg/_names.py``), so it follows namespaces and rollback like an alias. The same text is also written as a
plain ``skos:altLabel``, so linking and lookups by name (:class:`~kg.EntityLinker`, ``KnowledgeGraph.facts``)
find the entity by it with no change of their own; the tagged label is what an answer in that language reads
(:func:`label_in`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from rdflib import Literal
from rdflib.namespace import SKOS
from rdflib.term import Node, URIRef

from kg._names import name_quads
from kg._store import Quad, TripleStore
from kg._vocab import check_text
from tools.errors import InvalidInputError

__all__ = ["check_labels", "check_language", "label_in", "label_quads", "labels_in"]

# BCP 47's shape, loosely: a 2-3 letter primary language, then subtags ("zh", "zh-Hans", "pt-BR")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")


def check_language(value: object) -> str:
    """A language tag (``"zh"``, ``"zh-Hans"``), lower-cased: tags are case-insensitive (BCP 47), so they are
    stored and compared in lower case (``zh-Hans`` and ``zh-hans`` are one language).

    Raises:
        InvalidInputError: not a string shaped like a BCP 47 tag.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"a language tag is like 'zh' or 'zh-Hans', got {value!r}")
    tag = value.strip().lower()
    if not _LANGUAGE.match(tag):
        raise InvalidInputError(f"a language tag is like 'zh' or 'zh-Hans', got {value!r}")
    return tag


def check_labels(labels: Mapping[str, str] | None, owner: str) -> dict[str, str]:
    """``language -> name`` validated (tags by :func:`check_language`, names as labels).

    Raises:
        InvalidInputError: not a mapping, a bad tag or name, or two names for one language.
    """
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidInputError(f"labels of {owner!r} must map a language tag to a name, got {type(labels).__name__}")
    out: dict[str, str] = {}
    for language, name in labels.items():
        tag = check_language(language)
        text = check_text(name, f"{tag} label of {owner!r}")
        if out.get(tag, text) != text:
            raise InvalidInputError(f"two {tag} labels for {owner!r}: {out[tag]!r} and {text!r}")
        out[tag] = text
    return out


def _matches(literal: Node, language: str) -> bool:
    """``literal`` is tagged ``language`` or a subtag of it (``zh-Hans`` for ``zh``)."""
    tag = (getattr(literal, "language", None) or "").lower()
    return bool(tag) and (tag == language.lower() or tag.startswith(language.lower() + "-"))


def labels_in(store: TripleStore, node: URIRef, graph: URIRef, pending: Sequence[Quad] = ()) -> dict[str, str]:
    """The tagged names ``node`` has in the names graph ``graph`` (stored, or among ``pending`` quads)."""
    quads = [*store.quads(node, SKOS.prefLabel, None, graph), *(q for q in pending if q[:2] == (node, SKOS.prefLabel))]
    return {str(q[2].language).lower(): str(q[2]) for q in quads if isinstance(q[2], Literal) and q[2].language}


def label_quads(node: URIRef, graph: URIRef, labels: Mapping[str, str], known: Mapping[str, str]) -> list[Quad]:
    """The quads naming ``node`` in each language of ``labels`` that ``known`` (its tagged names) lacks.

    Raises:
        InvalidInputError: ``node`` already has another name in one of these languages (one per language;
            replacing it would not be undone by a rollback, so it is refused).
    """
    quads: list[Quad] = []
    for tag, name in labels.items():
        if tag in known:
            if known[tag] != name:
                raise InvalidInputError(f"{node} already has the {tag} label {known[tag]!r}, not {name!r}")
            continue
        quads.append((node, SKOS.prefLabel, Literal(name, lang=tag), graph))
    return quads


def label_in(
    store: TripleStore, nodes: Sequence[URIRef], language: str, namespaces: Sequence[str] | None
) -> str | None:
    """The name in ``language`` of the first of ``nodes`` that has one for a reader of ``namespaces``, else
    ``None`` (an exact tag first, then a subtag: ``zh`` before ``zh-Hant``)."""
    tag = check_language(language)
    for node in nodes:
        found = [q[2] for q in name_quads(store, node, SKOS.prefLabel, None, namespaces) if _matches(q[2], tag)]
        if found:
            exact = [lit for lit in found if str(getattr(lit, "language", "")).lower() == tag.lower()]
            return str(sorted(exact or found, key=str)[0])
    return None
