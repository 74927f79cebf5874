"""The Controller: decides what an interpreted message does to the knowledge, before anything is written.

For each claim it finds the schema conflicts (``KnowledgeGraph.conflicts``: functional, inverse,
composition) and what the edit would supersede; applies the trust policy (an untrusted user's contradiction
of a trusted fact is quarantined, and so is an object an untrusted user adds to a (subject, relation) whose
trusted facts name other objects, functional or not); enforces the per-user rate limit; augments the claims
with their inverse and composed facts (which never override anything: an augmented fact that conflicts is left out and
reported); and gives the edit its id (``e-`` + 8 hex digits).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from agent.tell._records import Claim, Interpretation, Role
from agent.tell._trust import RateLimiter, TrustPolicy
from kg import Conflict, ConflictKind, GraphView, KnowledgeGraph, normalize_mention
from memory import Triple

__all__ = ["Controller", "Decision", "ModelBelief", "augment", "new_edit_id"]

logger = logging.getLogger(__name__)

ModelBelief = Callable[[Triple], "str | None"]
"""The object a model confidently gives for ``(subject, relation)`` (``None`` when not confident)."""

Action = Literal["apply", "quarantine", "noop", "free_text", "not_an_edit"]


def new_edit_id() -> str:
    """A fresh edit id: ``e-`` + 8 hex digits."""
    return "e-" + secrets.token_hex(4)


@dataclass(frozen=True)
class Decision:
    """What the Controller decided for one message.

    Attributes:
        action: ``apply`` the claims (and free text), keep ``free_text`` only, ``quarantine`` for review,
            ``noop`` (every claim already holds) or ``not_an_edit``.
        edit_id: the id the edit will be written under (``apply``, ``free_text``).
        role: the user's role.
        claims: the claims to write (new facts).
        known: claims that already hold (nothing to write).
        augmented: inverse and composed facts to write with them.
        conflicts: conflicts of the claims (and of augmented facts left out) with the graph.
        superseded: valid facts the edit invalidates (functional relation, or "no longer X").
        reason: one line.
    """

    action: Action
    edit_id: str | None
    role: Role
    claims: tuple[Claim, ...] = ()
    known: tuple[Claim, ...] = ()
    augmented: tuple[Triple, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    superseded: tuple[Triple, ...] = ()
    reason: str = ""


def _same(a: str, b: str) -> bool:
    return normalize_mention(a) == normalize_mention(b)


def augment(graph: KnowledgeGraph | GraphView, claims: Sequence[Triple]) -> list[Triple]:
    """Facts that follow from ``claims`` by the schema's inverse, symmetry and property-chain axioms.

    Chains combine a claim with facts valid in the graph or with the other claims of the same message.
    """
    schema = graph.schema

    def facts(subject: str | None, relation: str, obj: str | None) -> list[Triple]:
        found = [a.triple for a in graph.facts(subject, relation, obj)]
        found += [
            c
            for c in claims
            if c.relation == relation
            and (subject is None or _same(c.subject, subject))
            and (obj is None or _same(c.object, obj))
        ]
        return found

    out: list[Triple] = []
    for t in claims:
        spec = schema.relation(t.relation)
        s, r, o = t.subject, spec.id, t.object
        out += [Triple(o, q, s) for q in spec.inverses]
        out += [Triple(o, r, s)] if spec.symmetric else []
        out += [Triple(o, q, s) for q in spec.inverse_of_super]
        for derived in schema.relations:
            for first, second in derived.chains:
                if first == r:  # s r o, o second z  =>  s derived z
                    out += [Triple(s, derived.id, f.object) for f in facts(o, second, None) if not _same(f.object, s)]
                if second == r:  # x first s, s r o  =>  x derived o
                    out += [Triple(f.subject, derived.id, o) for f in facts(None, first, s) if not _same(f.subject, o)]
    told = {(normalize_mention(c.subject), c.relation, normalize_mention(c.object)) for c in claims}
    unique: dict[tuple[str, str, str], Triple] = {}
    for t in out:
        key = (normalize_mention(t.subject), t.relation, normalize_mention(t.object))
        if key not in told and key[0] != key[2]:
            unique.setdefault(key, t)
    return list(unique.values())


class Controller:
    """Conflicts, trust, rate limits, augmentation and edit ids.

    Args:
        graph: the knowledge graph (read only here).
        trust: roles and trusted sources.
        limiter: per-user rate limits.
        model_belief: optional; an untrusted user's claim that contradicts the model's confident answer is
            quarantined too (facts only the model knows are not in the graph).
    """

    def __init__(
        self,
        graph: KnowledgeGraph,
        trust: TrustPolicy | None = None,
        limiter: RateLimiter | None = None,
        *,
        model_belief: ModelBelief | None = None,
    ) -> None:
        self.graph = graph
        self.trust = trust or TrustPolicy()
        self.limiter = limiter or RateLimiter(0)
        self.model_belief = model_belief

    def decide(self, interpretation: Interpretation, user: str, namespaces: Sequence[str] | None = None) -> Decision:
        """The decision for ``user``'s message (nothing is written).

        Args:
            interpretation: the interpreter's reading.
            user: who tells it.
            namespaces: what the writer can see, own namespace first (see ``KnowledgeGraph.facts``):
                known facts, conflicts, trust and augmentation are judged within these only, so nothing of
                a namespace the writer cannot read is named in the decision. ``None``: the whole graph.

        Raises:
            RateLimitedError: the user is over the rate limit (only messages that would write count).
        """
        graph: KnowledgeGraph | GraphView = self.graph if namespaces is None else self.graph.view(namespaces)
        role = self.trust.role(user)
        if interpretation.kind in ("question", "chitchat"):
            return Decision("not_an_edit", None, role, reason=interpretation.reason)
        new: list[Claim] = []
        known: list[Claim] = []
        for claim in interpretation.claims:
            t = claim.triple
            (known if graph.facts(t.subject, t.relation, t.object) else new).append(claim)
        if not new and not interpretation.free_text:
            return Decision("noop", None, role, known=tuple(known), reason="every fact is already known")
        self.limiter.check(user, role)

        conflicts: list[Conflict] = []
        superseded: list[Triple] = []
        for claim in new:
            found = graph.conflicts(claim.triple)
            conflicts += found
            superseded += [c.existing for c in found if c.kind is ConflictKind.FUNCTIONAL]
            if claim.replaces is not None and not graph.schema.relation(claim.triple.relation).functional:
                for a in graph.facts(claim.triple.subject, claim.triple.relation, claim.replaces):
                    conflicts.append(Conflict(ConflictKind.FUNCTIONAL, claim.triple, a.triple, (a,), "replaces"))
                    superseded.append(a.triple)

        quarantine = self._quarantine_reason(graph, role, new, conflicts) if interpretation.free_text or new else None
        if quarantine is not None:
            return Decision(
                "quarantine", None, role, tuple(new), tuple(known), (), tuple(conflicts), tuple(superseded), quarantine
            )

        augmented: list[Triple] = []
        for t in augment(graph, [c.triple for c in new]):
            if graph.facts(t.subject, t.relation, t.object):
                continue
            clashes = graph.conflicts(t)
            if clashes:  # a consequence never overrides what is asserted: left out, reported
                conflicts += clashes
                continue
            augmented.append(t)
        action: Action = "apply" if new else "free_text"
        reason = f"{len(new)} new fact(s), {len(augmented)} derived" if new else "free text kept as memory"
        return Decision(
            action,
            new_edit_id(),
            role,
            tuple(new),
            tuple(known),
            tuple(augmented),
            tuple(conflicts),
            tuple(dict.fromkeys(superseded)),
            reason,
        )

    def _quarantine_reason(
        self, graph: KnowledgeGraph | GraphView, role: Role, claims: Sequence[Claim], conflicts: Sequence[Conflict]
    ) -> str | None:
        if role != "untrusted":
            return None
        if self.trust.untrusted_policy == "all":
            return "statements of untrusted users are reviewed before they are applied"
        for conflict in conflicts:
            trusted = [a for a in conflict.evidence if self.trust.is_trusted_source(a.who)]
            if trusted:
                e = conflict.existing
                return (
                    f"contradicts the trusted fact ({e.subject}, {e.relation}, {e.object}) "
                    f"asserted by {trusted[0].who} ({conflict.rule})"
                )
        for claim in claims:  # a non-functional relation too: trusted facts say what its objects are
            t = claim.triple
            trusted = [a for a in graph.facts(t.subject, t.relation) if self.trust.is_trusted_source(a.who)]
            if trusted and not any(_same(a.triple.object, t.object) for a in trusted):
                e = trusted[0].triple
                return (
                    f"disagrees with the trusted fact ({e.subject}, {e.relation}, {e.object}) "
                    f"asserted by {trusted[0].who}"
                )
        if self.model_belief is not None:
            for claim in claims:
                belief = self.model_belief(claim.triple)
                if belief is not None and not _same(belief, claim.triple.object):
                    t = claim.triple
                    return f"contradicts the model's confident answer {belief!r} for ({t.subject}, {t.relation})"
        return None
