"""The concept desk: concept definitions told and asked in plain English, kept in the knowledge graph.

* **tell** — "A <concept> is <definition>." from a trusted user sets the concept's definition in the KG
  (:class:`kg.ConceptGraph`: a new assertion under a fresh edit id, the old definition superseded, not
  deleted) and stores the statement in the vector memory under the same edit id; :meth:`ConceptDesk.rollback`
  undoes both. An unknown concept is created and the result says so; its parent is the known concept its
  definition starts with, if any ("A volcano is a mountain that ..." under ``mountain``). Before writing, the
  desk acts as the controller for the statement: stored instance-of facts the new definition contradicts are
  reported as conflicts (``ConceptTell.conflicts``); a trusted user's definition is applied all the same (the
  conflict is reported, and membership is from then on read through the new definition). An untrusted user's
  definition is quarantined: nothing is written.
* **ask** — "What is a <concept>?" answers the current definition, "Is X a <concept>?" answers yes / no from
  the instance-of facts through the subclass closure (under the current definition); both cite the assertions.
  A question that is not about a known concept is not answered here (``None``): the agent's ordinary routing
  takes it.

Bad input: an empty or oversized definition (``InvalidDefinitionError``), a statement that is not a concept
definition (``InvalidInputError``); nothing is written. If the memory write fails, the KG write is rolled
back before the error propagates.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from agent._answer import Answer
from agent.retrieval import Citation, Evidence
from kg import Assertion, ConceptGraph, KnowledgeGraph, Membership, Provenance, check_definition
from memory import Triple
from tools.errors import FactagentError, InvalidInputError, NotFoundError

if TYPE_CHECKING:  # agent.tell is heavy to import: the records are imported where they are built
    from agent.tell import RollbackResult, TellResult

__all__ = ["ConceptAnswer", "ConceptDesk", "ConceptMemory", "ConceptTell"]

logger = logging.getLogger(__name__)

_EDIT_PREFIX = "cdef-"
_TELL = re.compile(r"^(?:an?)\s+(?P<label>.+?)\s+is\s+(?P<definition>(?:an?|the)\s+.+?)\s*\.?$", re.IGNORECASE)
_WHAT = re.compile(
    r"^what\s+(?:is|'s)\s+(?:the\s+definition\s+of\s+)?(?:an?\s+)?(?P<label>.+?)\s*\?*$|"
    r"^what\s+does\s+the\s+(?:term|word)\s+(?P<label2>.+?)\s+mean\s*\?*$|"
    r"^how\s+would\s+you\s+define\s+(?:an?\s+)?(?P<label3>.+?)\s*\?*$",
    re.IGNORECASE,
)
_IS_A = re.compile(
    r"^(?:is|would\s+you\s+call)\s+(?P<entity>.+?)\s+(?:an\s+example\s+of\s+)?an?\s+(?P<label>.+?)\s*\?*$|"
    r"^does\s+(?P<entity2>.+?)\s+belong\s+to\s+the\s+class\s+(?P<label2>.+?)\s*\?*$",
    re.IGNORECASE,
)


class ConceptMemory(Protocol):
    """The part of the vector memory the desk writes to (``memory.VectorMemory`` fits)."""

    def add(
        self,
        text: str,
        *,
        source: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        edit_id: str | None = None,
    ) -> Any: ...

    def rollback(self, edit_id: str) -> int: ...


@dataclass(frozen=True)
class ConceptTell:
    """What a told definition did.

    Attributes:
        status: ``applied`` (KG and memory written) or ``quarantined`` (untrusted user; nothing written).
        concept: the concept's label.
        definition: the definition as stored.
        edit_id: the edit to roll back (``None`` when quarantined).
        created: the concept was unknown and was created.
        conflicts: stored instances of the concept the new definition contradicts.
        message: one line for the user.
        triples: the assertions written (the definition, and the parent of a created concept).
        superseded: the definition it replaced, if any.
    """

    status: Literal["applied", "quarantined"]
    concept: str
    definition: str
    edit_id: str | None
    created: bool
    conflicts: tuple[str, ...]
    message: str
    triples: tuple[Triple, ...] = ()
    superseded: tuple[Triple, ...] = ()

    def to_tell_result(self) -> TellResult:
        """The tell pipeline's result shape (kind ``edit``), so CLI, server and tools show it like any tell."""
        from agent.tell import TellResult

        return TellResult(
            kind="edit",
            status=self.status,
            edit_id=self.edit_id,
            triples=self.triples,
            augmented=(),
            conflicts=(),  # instance conflicts are not schema conflicts: they are named in the message
            superseded=self.superseded,
            message=self.message,
        )


@dataclass(frozen=True)
class ConceptAnswer:
    """An answer from the concept graph.

    Attributes:
        kind: ``definition`` or ``instance_of``.
        text: the answer ("a large town ...", "yes", "no", or "I don't know").
        answer: the definition, ``True`` / ``False``, or ``None`` (the graph holds no class of the entity).
        citations: the KG assertions that decide it, as evidence (origin ``kg``).
        reason: why, in words.
    """

    kind: Literal["definition", "instance_of"]
    text: str
    answer: str | bool | None
    citations: tuple[Evidence, ...]
    reason: str

    def to_answer(self) -> Answer:
        """The agent's :class:`~agent.Answer` (action ``kg``; ``abstain`` when the graph cannot tell)."""
        if self.answer is None:
            return Answer(text="", action="abstain", confidence=0.0, reason=self.reason)
        return Answer(text=self.text, action="kg", confidence=1.0, citations=self.citations, reason=self.reason)


def _evidence(assertions: Sequence[Assertion]) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(
            text=f"{a.triple.subject} {a.triple.relation} {a.triple.object}",
            score=1.0,
            origin="kg",
            citation=Citation(assertion_id=a.id, triple=a.triple, edit_id=a.edit_id, who=a.who),
            recorded_at=a.recorded_at,
        )
        for a in assertions
    )


class ConceptDesk:
    """Tells and answers concept definitions over a knowledge graph (see the module docstring).

    Args:
        graph: the knowledge graph (its schema declares the concept relations).
        memory: where told definitions are also stored (``None``: KG only).
        trusted: users whose definitions are applied (names, or a predicate such as
            ``TrustPolicy.is_trusted_user``); others are quarantined.
        namespace: the namespace writes land in (``None``: the shared world namespace).
        namespaces: what reads see (``None``: everything).

    Example:
        >>> desk = ConceptDesk(graph, trusted={"alice"})  # doctest: +SKIP
        >>> desk.tell("A city is a large town.", user="alice").status  # doctest: +SKIP
        'applied'
    """

    def __init__(
        self,
        graph: KnowledgeGraph,
        memory: ConceptMemory | None = None,
        *,
        trusted: Collection[str] | Callable[[str], bool] = (),
        namespace: str | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> None:
        self.concepts = ConceptGraph(graph, namespaces)
        self.memory = memory
        self.is_trusted: Callable[[str], bool] = trusted if callable(trusted) else frozenset(trusted).__contains__
        self.namespace = namespace

    @staticmethod
    def parse(statement: str) -> tuple[str, str] | None:
        """``(concept, definition)`` of "A <concept> is a/an/the <definition>", else ``None``."""
        match = _TELL.match(statement.strip()) if isinstance(statement, str) else None
        return (match.group("label").strip(), match.group("definition").strip()) if match else None

    def tell(self, statement: str, user: str) -> ConceptTell:
        """Set a concept's definition from "A <concept> is <definition>." (module docstring).

        Raises:
            InvalidInputError: not a concept definition.
            InvalidDefinitionError: an empty or oversized definition (nothing written).
            HierarchyCycleError: never from a plain definition; from :meth:`kg.ConceptGraph.set_parent`.
        """
        parsed = self.parse(statement)
        if parsed is None:
            raise InvalidInputError(f"not a concept definition ('A <concept> is a ...'): {statement!r}")
        label, definition = parsed
        definition = check_definition(definition)
        if not self.is_trusted(user):
            return ConceptTell(
                status="quarantined",
                concept=label,
                definition=definition,
                edit_id=None,
                created=False,
                conflicts=(),
                message=f"quarantined: {user!r} is not trusted to define concepts; nothing changed",
            )
        edit_id = f"{_EDIT_PREFIX}{uuid.uuid4().hex[:12]}"
        # a new concept is placed under the known concept its definition starts with ("a mountain that ...")
        parent = None if self.concepts.is_concept(label) else self.concepts.genus(definition)
        change = self.concepts.define(
            label,
            definition,
            Provenance(f"user:{user}", source="tell", edit_id=edit_id, namespace=self.namespace),
            parent=parent,
        )
        if self.memory is not None:
            try:
                self.memory.add(statement.strip(), source=f"user:{user}", metadata={"concept": label}, edit_id=edit_id)
            except FactagentError:  # keep KG and memory together: undo the definition
                self.concepts.graph.rollback(edit_id)
                raise
        written: tuple[Triple, ...] = (Triple(label, "concept_definition", definition),)
        written += (Triple(label, "subclass_of", parent),) if parent is not None else ()
        parts = [f"{'created the concept' if change.created else 'updated the definition of'} {label!r}"]
        if change.conflicts:
            shown = ", ".join(change.conflicts[:5]) + (" ..." if len(change.conflicts) > 5 else "")
            parts.append(f"conflict: {len(change.conflicts)} stored instance(s) contradict it ({shown})")
        logger.info("concept %s defined by %s as %s (%s)", label, user, edit_id, "; ".join(parts))
        return ConceptTell(
            status="applied",
            concept=label,
            definition=definition,
            edit_id=edit_id,
            created=change.created,
            conflicts=change.conflicts,
            message="; ".join(parts),
            triples=written,
            superseded=(change.superseded.triple,) if change.superseded is not None else (),
        )

    @staticmethod
    def owns(edit_id: str) -> bool:
        """Whether ``edit_id`` names a definition told to a concept desk (ids ``cdef-...``)."""
        return isinstance(edit_id, str) and edit_id.startswith(_EDIT_PREFIX)

    def may_undo(self, edit_id: str, user: str, author: str) -> bool:
        """Whether ``user`` may undo the definition ``edit_id`` that ``author`` (``"user:<name>"``, as the edit
        log records it) told, where they do not write the namespace it lives in.

        Definitions live in the shared namespace every reader sees, which only admins write; a trusted user may
        set them all the same (the desk's rule, not the namespace's). So the rule that lets an author undo their
        own edit in a namespace they write becomes, for a definition: its author, while still trusted to define
        concepts. Anyone else's definition is the admins' (or, outside the server, trusted users') to undo.
        """
        return self.owns(edit_id) and author == f"user:{user}" and self.is_trusted(user)

    def rollback(self, edit_id: str) -> RollbackResult:
        """Undo a told definition in KG and memory together.

        Raises:
            NotFoundError: no such edit in the graph.
        """
        from agent.tell import RollbackResult

        count = self.concepts.graph.rollback(edit_id)
        versions = 0
        if self.memory is not None:
            try:
                versions = self.memory.rollback(edit_id)
            except NotFoundError:
                logger.debug("edit %s wrote nothing to memory", edit_id)
        message = f"Rolled back definition edit {edit_id}: {count} KG assertion(s) and {versions} memory version(s)"
        return RollbackResult(edit_id, count, versions, (), (), message + " undone.")

    def answer(self, question: str) -> ConceptAnswer | None:
        """Answer a definition or instance-of question about a known concept, else ``None``."""
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("a question must be a non-empty string")
        try:
            return self._answer(question.strip())
        except InvalidInputError:  # a "label" no entity may have (too long, control characters): not a concept
            return None

    def _answer(self, text: str) -> ConceptAnswer | None:
        if (m := _IS_A.match(text)) is not None:
            entity, label = (m.group("entity") or m.group("entity2")), (m.group("label") or m.group("label2"))
            if self.concepts.is_concept(label.strip()):
                return self._membership(self.concepts.is_instance(entity.strip(), label.strip()), entity.strip())
        if (m := _WHAT.match(text)) is not None:
            label = (m.group("label") or m.group("label2") or m.group("label3")).strip()
            found = self.concepts.definition(label)
            if found is not None:
                return ConceptAnswer(
                    kind="definition",
                    text=found.triple.object,
                    answer=found.triple.object,
                    citations=_evidence([found]),
                    reason=f"definition of {label!r} in the knowledge graph ({found.who})",
                )
        return None

    @staticmethod
    def _membership(m: Membership, entity: str) -> ConceptAnswer:
        ids = _evidence(m.citations)
        read = "" if m.read_as == m.concept else f" (its definition is that of {m.read_as!r})"
        if m.answer is None:
            return ConceptAnswer("instance_of", "I don't know", None, (), f"no class of {entity!r} in the graph")
        if m.answer:
            path = " -> ".join([m.citations[0].triple.object, *(a.triple.object for a in m.citations[1:])])
            return ConceptAnswer("instance_of", "yes", True, ids, f"{entity} is a {path}{read}")
        classes = ", ".join(a.triple.object for a in m.citations)
        return ConceptAnswer("instance_of", "no", False, ids, f"{entity} is a {classes}, not a {m.read_as}{read}")
