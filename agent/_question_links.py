"""Which (subject, relation) a question asks about: the first step of ``Agent.ask`` (:mod:`agent._signals`).

:class:`QuestionLinker` links a question with the KG's entity mentions and the relation linker, or else a
relation template matched word for word (which also yields the subject's text when the subject is not in
the KG), or else the longest capitalised span. The relation linker compares a masked question with the
relations' templates by sentence embedding when no template matches exactly; :meth:`QuestionLinker.link_texts`
names those masked questions before linking, so that the ask embeds them in the same embedder call as the
question itself (one embedding call per ask, issue 30) and linking then reads them from the memo.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.zh_gate import has_cjk
from kg import EntityLinker, Mention, RelationLinker, normalize_mention

__all__ = ["QuestionLink", "QuestionLinker", "capitalised_span"]


@dataclass(frozen=True)
class QuestionLink:
    """The (subject, relation) a question asks about; ``score`` in [0, 1], higher = more certain;
    ``template``: the relation's phrasing that matched (``None``: none in particular)."""

    subject: str
    relation: str
    score: float
    template: str | None


_QUESTION_WORDS = frozenset(
    {"who", "whom", "whose", "what", "which", "where", "when", "why", "how", "is", "are", "was", "were"}
    | {"do", "does", "did", "in", "on", "at"}
)
_CONNECTORS = frozenset(
    ["of", "de", "la", "le", "van", "von", "der", "den", "du", "da", "di", "al", "el", "y", "and", "the"]
)
_WORD = re.compile(r"[\w\-.'’]+", re.UNICODE)


def capitalised_span(question: str) -> str | None:
    """The longest run of capitalised words (with connectors such as "of") in ``question``, or ``None``.

    A name the knowledge graph does not know is still the question's subject: "Which university did
    Pivae Rolvrind attend?" -> "Pivae Rolvrind". A question word opening the sentence does not count.
    """
    words = [(m.group(0), m.start()) for m in _WORD.finditer(question)]
    best: tuple[int, int] | None = None
    i = 0
    while i < len(words):
        word = words[i][0]
        opening = i == 0 and word.lower() in _QUESTION_WORDS
        if not word[:1].isupper() or opening:
            i += 1
            continue
        j = i + 1
        while j < len(words) and (
            words[j][0][:1].isupper()
            or (words[j][0] in _CONNECTORS and j + 1 < len(words) and words[j + 1][0][:1].isupper())
        ):
            j += 1
        if best is None or j - i > best[1] - best[0]:
            best = (i, j)
        i = j
    if best is None:
        return None
    start = words[best[0]][1]
    last, at = words[best[1] - 1]
    span = question[start : at + len(last)]
    return re.sub(r"(['’]s|[.'’])$", "", span).strip() or None


def _as_written(question: str, mention: Mention) -> str:
    """The subject of a question linked through ``mention``: the entity's label, except for a name in
    Chinese characters (an alias, e.g. the ``@zh`` name 法国 of France) written as such in the question,
    which stays as written: the model's signals (familiarity, the prior's question about "N/A") read the
    subject in the question's own words."""
    entity = mention.link.entity
    if mention.link.method != "alias" or not has_cjk(mention.surface):
        return entity.label
    written = [a for a in entity.aliases if normalize_mention(a) == mention.surface and a in question]
    return written[0] if written else entity.label


def _template_regex(template: str) -> re.Pattern[str]:
    head, _, tail = template.partition("{}")
    return re.compile(r"^\s*" + re.escape(head) + r"(?P<s>.+?)" + re.escape(tail) + r"\s*$", re.IGNORECASE)


class QuestionLinker:
    """Links questions to (subject, relation) (see the module docstring).

    Args:
        entities, relations: the KG's linkers.
        templates: relation id -> its phrasings (``{}`` = subject), matched word for word.
    """

    def __init__(
        self, entities: EntityLinker, relations: RelationLinker, templates: Mapping[str, Sequence[str]]
    ) -> None:
        self._entities = entities
        self._relations = relations
        self.templates = {r: tuple(ts) for r, ts in templates.items()}
        self._patterns = [(r, t, _template_regex(t)) for r, ts in self.templates.items() for t in ts]

    def link(self, question: str, namespaces: Sequence[str] | None = None) -> QuestionLink | None:
        """The best (subject, relation) for ``question``, or ``None``; only names of ``namespaces`` link
        (``None``: every namespace's)."""
        best: QuestionLink | None = None
        for mention in self._entities.find_mentions(question, namespaces=namespaces)[:3]:
            for rel in self._relations.link(question, mention.surface, k=1):
                score = mention.link.score * rel.score
                if best is None or score > best.score:
                    best = QuestionLink(_as_written(question, mention), rel.relation, score, rel.template)
        if best is not None and best.score >= 0.5:
            return best
        matched = self._pattern_link(question)
        if matched is not None:
            return matched
        span = capitalised_span(question)
        if best is None and span is not None:
            for rel in self._relations.link(question, span, k=1):
                best = QuestionLink(span, rel.relation, rel.score, rel.template)
        return best

    def link_texts(self, question: str, namespaces: Sequence[str] | None = None) -> list[str]:
        """The texts :meth:`link` will have the relation linker embed for ``question`` (masked questions no
        template matches exactly), in the order it embeds them; none when every step matches exactly.

        Reads only names (no embedding): an ask embeds these with the question in one call beforehand.
        """
        mentions = self._entities.find_mentions(question, namespaces=namespaces)[:3]
        if mentions:  # link() asks the relation linker about each of them
            surfaces = [m.surface for m in mentions]
        elif self._pattern_link(question) is not None:
            return []
        else:  # then about the capitalised span, when there is one
            span = capitalised_span(question)
            surfaces = [span] if span is not None else []
        texts = (self._relations.embedding_text(question, s) for s in surfaces)
        return list(dict.fromkeys(t for t in texts if t is not None))

    def _pattern_link(self, question: str) -> QuestionLink | None:
        for relation, template, pattern in self._patterns:
            match = pattern.match(question)
            if match:
                return QuestionLink(match.group("s").strip(), relation, 1.0, template)
        return None
