"""Which memory passages a user TOLD about a question's (subject, relation): free text no reader took.

An edit told in words no reader takes is kept as free text (no triple), so the KG holds nothing for it and
the model may still answer its old fact; :func:`agent._policy.decide` lets such a passage veto a model
answer it does not name (:attr:`agent.Signals.told`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent._question_links import QuestionLink
from agent.retrieval import Evidence
from kg import EntityLinker, RelationLinker, normalize_mention

__all__ = ["told_about"]


def told_about(
    link: QuestionLink,
    memory: Sequence[Evidence],
    entities: EntityLinker,
    relations: RelationLinker,
    inverses: Mapping[str, frozenset[str]],
    namespaces: Sequence[str] | None = None,
) -> tuple[Evidence, ...]:
    """The passages of ``memory`` a user told as free text (source ``user:...``, no triple read from them)
    that name ``link``'s subject (its words, or a KG name of the entity it links to) and whose best relation,
    as ``relations`` reads the passage with that name as its subject, is ``link``'s or one of its
    ``inverses`` (the linker confuses the two directions: "X created the work Y" reads best as ``creator``,
    asked as X's ``notable_work``; both are the same fact)."""
    wanted = {link.relation} | inverses.get(link.relation, frozenset())
    out = []
    for e in memory:
        if e.citation.triple is not None or not (e.citation.who or "").startswith("user:"):
            continue
        surface = _subject_in(e.text, link.subject, entities, namespaces)
        if surface is None:
            continue
        ranked = relations.link(e.text, surface, k=1)
        if ranked and ranked[0].relation in wanted:
            out.append(e)
    return tuple(out)


def _subject_in(text: str, subject: str, entities: EntityLinker, namespaces: Sequence[str] | None) -> str | None:
    """How ``text`` names ``subject``: its own words, or a mention linked to an entity of that label."""
    key = normalize_mention(subject)
    if key and f" {key} " in f" {normalize_mention(text)} ":
        return subject
    for mention in entities.find_mentions(text, namespaces=namespaces):
        if normalize_mention(mention.link.entity.label) == key:
            return mention.surface
    return None
