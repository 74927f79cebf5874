"""The Interpreter: from a message to claims (triples), or "not an edit".

:class:`TemplateInterpreter` is the embedded default. It splits the message into sentences, strips
discourse markers ("Actually, ...", "... is now ..."), reads each statement through the schema's statement
patterns (:mod:`agent.tell._patterns`) and links subject and object to known entities by exact label or
alias; a name it does not know becomes a new entity. Questions and chit-chat are recognised as not-an-edit;
a statement about something that matches no relation is kept as free text, never forced into a triple.
A relative clause between commas is read as a statement of its own (:mod:`agent.tell._clauses`), and a reading
whose names are known only as classes the relation's domain or range excludes is not applied
(:mod:`agent.tell._types`): the next phrasing that fits is taken, or none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from agent.tell._clauses import relative_clauses
from agent.tell._name_checks import no_letters
from agent.tell._patterns import Match, StatementPattern, match_sentence, statement_patterns
from agent.tell._pronouns import has_pronoun, is_pronoun, pronoun_fits, pronoun_kind, with_antecedent
from agent.tell._reader import TripleReader
from agent.tell._records import Claim, Interpretation
from agent.tell._role_nouns import role_nouns, shadowed_by
from agent.tell._sentences import (
    clean_sentence,
    is_chitchat,
    is_question,
    looks_like_a_name,
    split_object,
    split_sentences,
)
from agent.tell._types import TypeCheck
from kg import EntityLinker, KnowledgeGraph, Schema, normalize_mention
from memory import Triple
from tools.errors import ContradictoryStatementError, InvalidInputError

__all__ = ["Interpreter", "TemplateInterpreter", "check_consistent", "interpretation_of"]

logger = logging.getLogger(__name__)

_LEAD_INS = {
    "in", "by", "according", "as", "for", "on", "at", "from", "regarding", "speaking", "since", "after",
    "officially", "technically", "formally", "strictly", "today", "currently", "nowadays", "historically",
}  # fmt: skip
_NEGATIONS = ("not ", "no longer ", "never ", "no one", "nobody", "none")


@runtime_checkable
class Interpreter(Protocol):
    """Reads a message as claims, a question, chit-chat or free text."""

    def interpret(self, text: str) -> Interpretation:
        """The reading of ``text``.

        Raises:
            ContradictoryStatementError: two claims give different objects to one functional (subject, relation).
            InterpretationError: the interpreter's own output was invalid (LLM interpreters).
        """
        ...


def check_consistent(schema: Schema, claims: Sequence[Claim]) -> None:
    """Raise :class:`ContradictoryStatementError` if two claims disagree on a functional (subject, relation)."""
    seen: dict[tuple[str, str], Claim] = {}
    for claim in claims:
        t = claim.triple
        if not schema.relation(t.relation).functional:
            continue
        key = (normalize_mention(t.subject), t.relation)
        other = seen.setdefault(key, claim)
        if normalize_mention(other.triple.object) != normalize_mention(t.object):
            raise ContradictoryStatementError(
                f"the message says both ({t.subject}, {t.relation}, {other.triple.object}) and "
                f"({t.subject}, {t.relation}, {t.object}), but {t.relation} has one value; nothing was applied"
            )


def interpretation_of(
    claims: Sequence[Claim],
    free_text: Sequence[str],
    questions: Sequence[str],
    chitchat: int,
    suggestions: Sequence[Claim] = (),
) -> Interpretation:
    """Assemble an :class:`Interpretation` (its kind and reason) from the sorted sentences of a message."""
    by_fact: dict[tuple[str, str, str], Claim] = {}
    for claim in claims:  # the same fact said twice is one claim
        t = claim.triple
        by_fact.setdefault((normalize_mention(t.subject), t.relation, normalize_mention(t.object)), claim)
    unique = tuple(by_fact.values())
    if unique:
        kind, reason = "edit", f"{len(unique)} fact(s) stated"
    elif free_text:
        kind, reason = "free_text", "a statement that matches no known relation"
    elif questions:
        kind, reason = "question", "a question, not a statement"
    else:
        kind, reason = "chitchat", "chit-chat: no fact, no question" if chitchat else "nothing to note"
    return Interpretation(
        kind,  # type: ignore[arg-type]
        claims=unique,
        free_text=tuple(free_text),
        questions=tuple(questions),
        reason=reason,
        suggestions=tuple(suggestions) if not unique else (),
    )


class TemplateInterpreter:
    """The schema's statement patterns plus exact entity linking.

    Args:
        schema: the relation schema (its cloze templates and labels give the statement patterns).
        entity_linker: links subject and object names to known entities (label, then alias; no embedding).
        graph: optional; when two relations read a sentence equally well, the one the subject (or object)
            already has facts of wins.
        phrasings: further statement phrasings by relation id (the schema file's ``fa:statement``, see
            :func:`agent.tell.load_statement_phrasings`).
        reader: optional learned reader (:class:`~agent.tell.TripleReader`) for statements no schema
            phrasing matches: a reading above its calibrated threshold becomes a claim with its confidence;
            one below it, or ambiguous between relations, becomes a suggestion and the sentence stays free text.

    Example:
        >>> interpreter = TemplateInterpreter(load_schema(), EntityLinker())  # doctest: +SKIP
        >>> interpreter.interpret("Actually, the CEO of Acme is now Jane Roe.").claims[0].triple  # doctest: +SKIP
        Triple(subject='Acme', relation='company_ceo', object='Jane Roe')
    """

    def __init__(
        self,
        schema: Schema,
        entity_linker: EntityLinker,
        graph: KnowledgeGraph | None = None,
        phrasings: Mapping[str, Sequence[str]] | None = None,
        reader: TripleReader | None = None,
    ) -> None:
        self._reader = reader
        self._schema = schema
        self._linker = entity_linker
        self._graph = graph
        self._patterns: tuple[StatementPattern, ...] = statement_patterns(schema, phrasings)
        self._types = TypeCheck(schema, entity_linker, graph)
        self._nouns = role_nouns(schema, phrasings)

    @property
    def schema(self) -> Schema:
        return self._schema

    def interpret(self, text: str) -> Interpretation:
        """Read ``text`` sentence by sentence (see the module docstring).

        Raises:
            InvalidInputError: ``text`` is not a non-empty string.
            ContradictoryStatementError: two claims give different objects to one functional (subject, relation).
        """
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a message must be a non-empty string")
        claims: list[Claim] = []
        suggestions: list[Claim] = []
        free: list[str] = []
        questions: list[str] = []
        chitchat = 0
        sentences = [piece for whole in split_sentences(text, self._joins) for piece in relative_clauses(whole)]
        antecedents: list[str] = []  # names said so far in the message, most recent first
        for sentence in sentences:
            if is_chitchat(sentence):
                chitchat += 1
                continue
            if sentence.rstrip().endswith("?"):
                questions.append(sentence)
                continue
            cleaned = clean_sentence(sentence)
            told = [c.triple for c in claims]
            claim = self._with_antecedents(sentence, cleaned, antecedents, told)
            if claim is None:
                previous = claims[-1].triple.subject if claims else None
                claim = self._read_one(sentence, cleaned, previous, told, suggestions)
            if claim is not None and (is_pronoun(claim.triple.subject) or is_pronoun(claim.triple.object)):
                claim = None  # "It is made by Toyota." with nothing for "it" to stand for: no entity called "It"
            antecedents[:0] = self._names_in(sentence, claim)
            if claim is not None:
                claims.append(claim)
            elif is_question(sentence):
                questions.append(sentence)
            elif self._mentions(cleaned) or looks_like_a_name(cleaned):
                free.append(sentence)
            else:
                chitchat += 1
        check_consistent(self._schema, claims)
        result = interpretation_of(claims, free, questions, chitchat, suggestions)
        logger.debug("interpreted %r as %s (%s)", text[:80], result.kind, result.reason)
        return result

    # -- one sentence ----------------------------------------------------------------------------------

    def _read_one(
        self, sentence: str, cleaned: str, previous_subject: str | None, told: list[Triple], suggestions: list[Claim]
    ) -> Claim | None:
        """A schema phrasing's reading of the sentence, else the learned reader's (unsure ones are suggested)."""
        claim = self._read(sentence, cleaned, previous_subject, told)
        if claim is not None and self._reader is not None and not _clean_names(claim):
            claim = None  # a schema phrasing that left words around a name ("is named X"): let the reader read it
        if claim is None and self._reader is not None and cleaned and not is_question(sentence):
            claim = self._learned(sentence, cleaned, suggestions, told)
        return claim

    def _with_antecedents(
        self, sentence: str, cleaned: str, antecedents: Sequence[str], told: list[Triple]
    ) -> Claim | None:
        """The reading of a sentence with a pronoun, the pronoun standing for the most recent earlier name whose
        reading fits the relation's classes ("It is made by Toyota." after "... the Acura TL."); ``None`` when
        the sentence has no pronoun, the message no earlier name, or no name gives a reading that names it."""
        if not antecedents or not has_pronoun(cleaned):
            return None
        kind = pronoun_kind(cleaned)
        for name in antecedents[:3]:
            if kind is not None and not pronoun_fits(self._schema, self._types.classes(name, told), kind):
                continue  # "she" after "AOL is run by Jane Roe": AOL is a company
            key = normalize_mention(name)
            for variant in with_antecedent(cleaned, name):
                claim = self._read_one(sentence, variant, None, told, [])  # tries offer nothing back
                names = (claim.triple.subject, claim.triple.object) if claim is not None else ()
                if key in (normalize_mention(n) for n in names):
                    return claim
        return None

    def _names_in(self, sentence: str, claim: Claim | None) -> list[str]:
        """The names a sentence said, in the order it says them (the first is most often its grammatical
        subject, which a pronoun in the next sentence most often stands for: "Alfred Nobel's father was
        Immanuel Nobel. His mother was ..."): its claim's, then the known names it mentions."""
        folded = sentence.casefold()
        said = [] if claim is None else [claim.triple.subject, claim.triple.object]
        names = sorted(said, key=lambda n: folded.find(n.casefold()) % (len(folded) + 1))  # not found: last
        mentions = sorted(self._linker.find_mentions(sentence), key=lambda m: m.start)
        names += [m.link.entity.label for m in mentions]
        return [n for n in dict.fromkeys(names) if not is_pronoun(n)]

    def _learned(self, sentence: str, cleaned: str, suggestions: list[Claim], told: list[Triple]) -> Claim | None:
        """The learned reader's claim for a sentence no schema phrasing read; unsure readings are suggested.

        A reading whose names are known only as classes its relation excludes is dropped (neither applied nor
        offered), and so is each such alternative of an ambiguous phrase; so is a reading that leaves out a name
        of the sentence known to be of the class one of its own names is not known to be (:meth:`TypeCheck.left_out`).
        """
        assert self._reader is not None
        if _NOT.search(cleaned):  # "X is not / no longer ...": nothing positive to record (kept as free text)
            return None
        reading = self._reader.read(cleaned)
        if reading is None:
            return None
        t = reading.triple
        if no_letters(t.subject) or no_letters(t.object):
            return None  # "AOL is run by 42.": no name to record, nothing to offer back
        claim = self._without_article(Claim(
            t, sentence, None, reading.subject_score, reading.new_subject, reading.new_object,
            confidence=reading.confidence,
        ))  # fmt: skip
        t = claim.triple
        if not self._types.fits(t, told):
            logger.debug("reading %s of %r dropped: its names' classes exclude the relation", t, sentence[:80])
            return None
        mentioned = [m.link.entity.label for m in self._linker.find_mentions(cleaned)]
        if self._types.left_out(t, mentioned, told) is not None:
            logger.debug("reading %s of %r dropped: it leaves out a name of the relation's class", t, sentence[:80])
            return None
        unread = self._unread_relation(cleaned, t.relation) or shadowed_by(cleaned, t.relation, self._nouns)
        if unread is not None:  # "Paris is the capital of France.": the reader cannot read 'capital'; "X's
            # mother tongue was Y.": 'mother' is part of another relation's noun
            suggestions.append(replace(claim, triple=Triple(t.subject, unread, t.object)))
            return None
        if reading.accepted:
            return claim
        suggestions.append(claim)
        for relation in reading.alternatives:  # an ambiguous phrase: offer each relation it may mean
            other = Triple(t.subject, relation, t.object)
            if self._types.fits(other, told):
                suggestions.append(replace(claim, triple=other))
        return None

    def _unread_relation(self, sentence: str, read: str) -> str | None:
        """A schema relation the learned reader was not trained on whose label the sentence names, when the
        relation it read is not named ("Paris is the capital of France." names ``capital``, which the reader
        cannot read: it would read headquarters city): that relation, offered back instead of applied."""
        assert self._reader is not None
        known = set(self._reader.model.relations)
        words = set(re.findall(r"[a-z]+", sentence.lower()))
        label = self._schema.relation(read).label if read in self._schema else ""
        if any(len(w) > 3 and w in words for w in re.findall(r"[a-z]+", label.lower())):
            return None
        for spec in self._schema.relations:
            if spec.id not in known and re.search(rf"\b{re.escape(spec.label.lower())}s?\b", sentence.lower()):
                return spec.id
        return None

    def _read(self, sentence: str, cleaned: str, previous_subject: str | None, told: list[Triple]) -> Claim | None:
        """The best-ranked schema phrasing's claim whose names' classes fit its relation (else ``None``)."""
        for match in sorted(match_sentence(self._patterns, cleaned), key=self._rank, reverse=True):
            claim = self._claim(match, sentence, previous_subject)
            if claim is None:
                return None
            claim = self._without_article(claim)
            if self._types.fits(claim.triple, told):
                return claim
            logger.debug("phrasing %r of %r skipped: its names' classes exclude the relation", match.pattern.template,
                         sentence[:80])  # fmt: skip
        return None

    def _claim(self, best: Match, sentence: str, previous_subject: str | None) -> Claim | None:
        if best.object_text.lower().startswith(_NEGATIONS) and " but " not in best.object_text:
            return None  # "X is not Y": nothing positive to record (kept as free text)
        obj, replaces = split_object(best.object_text)
        subject = _drop_lead_in(best.subject, self._exact(best.subject)[1] > 0)
        if is_pronoun(normalize_mention(subject)) and previous_subject is not None:
            subject = previous_subject
        if not obj or not subject or no_letters(obj) or no_letters(subject):
            return None  # "The CEO of AOL is 42.": no name (kept as free text)
        s_label, s_score = self._exact(subject)
        o_label, o_score = self._exact(obj)
        old = self._exact(replaces)[0] if replaces else None
        if old is not None and normalize_mention(old) == normalize_mention(o_label):
            old = None
        try:
            triple = Triple(s_label, best.pattern.relation, o_label)
        except InvalidInputError:
            return None
        return Claim(triple, sentence, best.pattern.template, s_score, s_score == 0.0, o_score == 0.0, old)

    def _without_article(self, claim: Claim) -> Claim:
        """``"The Acura TL"`` -> ``"Acura TL"``: a name read with a leading "the" that names no known entity while
        the name without it does is the known one (else the fact would go to a new entity "The Acura TL" and the
        known one would keep its old answer). "The Hague", a known name, stays whole."""
        names = []
        for name in (claim.triple.subject, claim.triple.object):
            score = self._exact(name)[1]
            bare = name[4:].strip() if name[:4].casefold() == "the " else ""
            bare_label, bare_score = self._exact(bare) if bare else ("", 0.0)
            names.append((bare_label, bare_score) if score == 0.0 and bare_score > 0 else (name, score))
        (subject, s_score), (obj, o_score) = names
        if (subject, obj) == (claim.triple.subject, claim.triple.object):
            return claim
        triple = Triple(subject, claim.triple.relation, obj)
        return replace(
            claim, triple=triple, subject_score=max(claim.subject_score, s_score),
            new_subject=claim.new_subject and s_score == 0.0, new_object=claim.new_object and o_score == 0.0,
        )  # fmt: skip

    def _rank(self, match: Match) -> tuple[int, int, int, int, int, int]:
        """Most specific pattern, then a known subject, then KG evidence for the relation, then a known object."""
        subject_known = int(self._exact(match.subject)[1] > 0)
        obj = split_object(match.object_text)[0]
        object_known = int(bool(obj) and self._exact(obj)[1] > 0)
        evidence = 0
        graph = self._types.graph()  # the facts the teller reads: another tenant's never sway a reading
        if graph is not None and subject_known:
            evidence = int(bool(graph.facts(self._exact(match.subject)[0], match.pattern.relation)))
        if graph is not None and not evidence and object_known:
            evidence = int(bool(graph.facts(None, match.pattern.relation, self._exact(obj)[0])))
        return (match.pattern.literal, subject_known, evidence, object_known, -match.pattern.order, -len(match.subject))

    def _exact(self, name: str | None) -> tuple[str, float]:
        """``(canonical label, score)`` when ``name`` is exactly a known label or alias, else ``(name, 0.0)``."""
        if not name:
            return "", 0.0
        key = normalize_mention(name)
        if not key:
            return name, 0.0
        for mention in self._linker.find_mentions(name):
            if mention.surface == key:
                return mention.link.entity.label, mention.link.score
        return name, 0.0

    def _mentions(self, sentence: str) -> bool:
        return bool(self._linker.find_mentions(sentence))

    def _joins(self, left: str, right: str) -> bool:
        """A known name spans the break between two sentence pieces ("Yum!" + "Brands's CEO is ...")."""
        head = " ".join(left.split()[-4:])
        tail = " ".join(right.split()[:4])
        boundary = len(normalize_mention(head).split())
        return any(m.start < boundary < m.end for m in self._linker.find_mentions(f"{head} {tail}"))


def _drop_lead_in(subject: str, known: bool) -> str:
    """``"In genealogical terms, Ann"`` -> ``"Ann"``: an adverbial lead-in before an unknown subject's name.

    Only a head that reads like an adverbial ("In genealogical terms", "According to Bob", "Officially") is
    dropped, so names with a comma ("Matson, Inc.", "At Binsey, near Oxford") stay whole.
    """
    if known or ", " not in subject:
        return subject
    head, tail = subject.split(", ", 1)
    words = head.split()
    adverbial = len(words) == 1 or any(w[:1].islower() for w in words[1:])  # not "At Binsey", a name
    return tail.strip() if words[0].casefold() in _LEAD_INS and adverbial and tail.strip() else subject


# a negation, or a role left ("stepped down as CEO of X", "the former CEO", "X was replaced by Y": X is the one
# who left): nothing current to record
_NOT = re.compile(
    r"\b(?:not|never|no longer|isn't|wasn't|aren't|doesn't|didn't|former|formerly|stepped down|steps down|"
    r"step down|resigned|resigns|quit|quits|(?:was|has been|had been) (?:fired|ousted|sacked|dismissed|replaced|"
    r"succeeded))\b|\bex-",
    re.IGNORECASE,
)
# words a schema phrasing leaves around a name when the sentence goes on ("is named X", "Ann has married ...")
_LEFTOVER_HEAD = {
    "named", "called", "to", "at", "by", "as", "is", "was", "university", "listed", "known", "in", "on", "from",
    "with", "now", "also",
}  # fmt: skip
_LEFTOVER_TAIL = {"has", "got", "had", "himself", "herself", "itself", "year", "week", "month", "now", "today", "again"}


def _clean_names(claim: Claim) -> bool:
    """Neither subject nor object starts or ends with a word a phrasing left over ("named Henry VI", "Ann
    has", "Arai himself") when a name follows it, nor with an article and a lower-case type noun before a
    capitalised name ("The painting Abstraction"): such a schema reading is left to the learned reader."""
    for name in (claim.triple.subject, claim.triple.object):
        words = name.split()
        if len(words) > 1 and (words[0] in _LEFTOVER_HEAD or words[-1] in _LEFTOVER_TAIL):
            return False
        article = len(words) > 2 and words[0].casefold() in ("the", "a", "an")
        if article and words[1].islower() and words[2][:1].isupper():
            return False  # "The painting Abstraction": a type noun before the name (the reader drops it)
    return True
