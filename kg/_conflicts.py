"""Typed conflicts between a candidate fact and what the graph holds (valid at some time).

Three kinds, each from a schema axiom (rule strings use the Pitfalls notation with relation ids: ``a>b``
means ``x a y => y b x``; ``a&b>c`` means ``x a y, y b z => x c z``):

* FUNCTIONAL: the relation is functional (or the caller says this edit replaces *the* answer to
  ``(s, r)``: ``single_valued``) and a different object is asserted.
* INVERSE: an asserted fact entails ``(s, r, o')`` through an inverse axiom (``owl:inverseOf``, symmetry,
  or ``q ⊑ r⁻¹``) with ``o' != o`` while ``r`` is single-valued; or the candidate entails ``(o, r', s)`` for
  a functional ``r'`` while ``(o, r', s'')`` with ``s'' != s`` is asserted.
* COMPOSITION: a property chain entails ``(s, r, o')`` with ``o' != o`` (and ``o' != s``) while ``r`` is
  single-valued.

Only logically valid entailments count: ``father ⊑ child⁻¹`` lets a father fact imply a child fact, never
the reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum

from kg._records import Assertion
from kg._schema import Schema
from tools.base import Triple

__all__ = ["Conflict", "ConflictKind", "FactLookup", "find_conflicts"]

# (subject IRI or None, relation id, object IRI or None) -> the assertions valid at the time of interest.
FactLookup = Callable[[str | None, str, str | None], list[Assertion]]


class ConflictKind(Enum):
    FUNCTIONAL = "functional"
    INVERSE = "inverse"
    COMPOSITION = "composition"


@dataclass(frozen=True)
class Conflict:
    """A candidate triple clashes with an asserted or entailed one.

    Attributes:
        kind: which axiom produced the clash.
        candidate: the triple being checked.
        existing: the asserted or entailed triple it clashes with.
        evidence: the valid assertions ``existing`` rests on (one, or two for a chain).
        rule: the axiom, e.g. ``"creator is functional"``, ``"notable_work>creator"``,
            ``"position_held&applies_to_jurisdiction>country_of_citizenship"``.
    """

    kind: ConflictKind
    candidate: Triple
    existing: Triple
    evidence: tuple[Assertion, ...]
    rule: str


def find_conflicts(
    schema: Schema,
    lookup: FactLookup,
    candidate: Triple,
    subject: str,
    objects: Collection[str],
    *,
    single_valued: bool = False,
) -> list[Conflict]:
    """Every conflict of ``candidate`` with the facts ``lookup`` returns.

    Args:
        schema: the relation axioms.
        lookup: valid assertions by pattern (the caller fixes the time).
        candidate: the fact to check (labels, relation id).
        subject: the candidate subject's IRI.
        objects: IRIs that count as the candidate's object (one, or several when a name is ambiguous).
        single_valued: treat the relation as functional for this check (a knowledge edit of ``(s, r)``).

    Returns:
        Conflicts in rule order: functional, inverse, composition.

    Raises:
        InvalidInputError: the candidate's relation is not in the schema.
    """
    spec = schema.relation(candidate.relation)
    r = spec.id
    single = spec.functional or single_valued
    found: list[Conflict] = []

    def add(kind: ConflictKind, existing: Triple, evidence: tuple[Assertion, ...], rule: str) -> None:
        found.append(Conflict(kind, candidate, existing, evidence, rule))

    if single:
        why = f"{r} is functional" if spec.functional else f"{r} is single-valued for this edit"
        for a in lookup(subject, r, None):
            if a.object_iri not in objects:
                add(ConflictKind.FUNCTIONAL, a.triple, (a,), why)
        # Facts (o', q, s) that entail (s, r, o').
        sources = [*spec.inverses, *([r] if spec.symmetric else []), *(q.id for q in schema.inverse_sources(r))]
        for q in dict.fromkeys(sources):
            for a in lookup(None, q, subject):
                if a.subject_iri not in objects and a.subject_iri != subject:
                    add(ConflictKind.INVERSE, Triple(a.triple.object, r, a.triple.subject), (a,), f"{q}>{r}")

    # The candidate entails (o, q, s); q functional clashes with an asserted (o, q, s'').
    targets = [*spec.inverses, *([r] if spec.symmetric else []), *spec.inverse_of_super]
    for q in dict.fromkeys(targets):
        if not schema.relation(q).functional:
            continue
        for obj in objects:
            for a in lookup(obj, q, None):
                if a.object_iri != subject:
                    add(ConflictKind.INVERSE, a.triple, (a,), f"{r}>{q}")

    if single:
        for first_rel, second_rel in spec.chains:
            for first in lookup(subject, first_rel, None):
                for second in lookup(first.object_iri, second_rel, None):
                    z = second.object_iri
                    if z not in objects and z != subject:
                        existing = Triple(first.triple.subject, r, second.triple.object)
                        add(ConflictKind.COMPOSITION, existing, (first, second), f"{first_rel}&{second_rel}>{r}")
    return found
