"""Value records of the tell pipeline: claims, interpretations, decisions, results and log records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from kg import Conflict
from memory import MetadataValue, Triple

__all__ = [
    "Claim",
    "EditRecord",
    "Interpretation",
    "InterpretationKind",
    "QuarantineItem",
    "Role",
    "RollbackResult",
    "TellResult",
    "TellStatus",
]

Role = Literal["admin", "trusted", "user", "untrusted"]
"""A user's role: ``admin`` and ``trusted`` users' facts are trusted; ``untrusted`` users' contradictions of
trusted facts are quarantined."""

InterpretationKind = Literal["edit", "question", "chitchat", "free_text"]
TellStatus = Literal["applied", "quarantined", "not_an_edit", "noop", "free_text"]


@dataclass(frozen=True)
class Claim:
    """One fact a message states.

    Attributes:
        triple: subject and object labels (canonical labels when linked to a known entity) and relation id.
        sentence: the sentence of the message that states it.
        template: the schema phrasing it matched (``"{}'s CEO is"``), or ``None`` (e.g. from an LLM).
        subject_score: entity-link score of the subject in [0, 1] (1.0 exact label, 0.95 alias, 0.0 new).
        new_subject: the subject names no known entity (a new one is created).
        new_object: the object names no known entity.
        replaces: an object the message says no longer holds ("no longer Bob but Ann" -> ``"Bob"``).
        confidence: how sure the interpreter is of this reading, in [0, 1] (1.0 for a schema phrasing; the
            learned reader's calibrated confidence for a free phrasing).
    """

    triple: Triple
    sentence: str
    template: str | None = None
    subject_score: float = 0.0
    new_subject: bool = True
    new_object: bool = True
    replaces: str | None = None
    confidence: float = 1.0


@dataclass(frozen=True)
class Interpretation:
    """What a message is: an edit (claims), a question, chit-chat, or free text to keep as memory.

    Attributes:
        kind: ``edit`` when there is at least one claim; else ``free_text`` when some statement matched no
            relation; else ``question`` or ``chitchat``.
        claims: the facts stated, in message order.
        free_text: statements that are about something but match no relation (kept as free-text memory).
        questions: question sentences of the message (the agent answers them; they are never edits).
        reason: one line saying why (for ``/why`` and logs).
        suggestions: readings the interpreter was not sure enough of (or that were ambiguous between
            relations) to apply: offered back ("Did you mean (X, CEO, Y)?"), never applied.
    """

    kind: InterpretationKind
    claims: tuple[Claim, ...] = ()
    free_text: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    reason: str = ""
    suggestions: tuple[Claim, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TellResult:
    """What :meth:`TellPipeline.tell` did (built by keyword; what a case did not write is left at its default).

    Attributes:
        kind: the interpretation's kind.
        status: ``applied`` (written under ``edit_id``), ``quarantined`` (stored for review as
            ``quarantine_id``, nothing applied), ``not_an_edit`` (question / chit-chat), ``noop`` (every
            fact was already known), ``free_text`` (kept as free-text memory under ``edit_id``).
        edit_id: ``e-`` + 8 hex digits, when something was written.
        triples: the told facts.
        augmented: inverse and composed facts written under the same edit id.
        conflicts: conflicts with what the graph held (the functional ones are superseded when applied).
        superseded: facts this edit invalidated (kept in history; rollback restores them).
        message: a one-line human summary.
        quarantine_id: ``q-`` + 8 hex digits when quarantined.
        journal_ids: parametric edit journal ids (``immediate`` mode).
        interpretation: the interpreter's reading of the message.
        memory_items: ids of the memory items the edit wrote.
    """

    kind: InterpretationKind
    status: TellStatus
    message: str
    edit_id: str | None = None
    triples: tuple[Triple, ...] = ()
    augmented: tuple[Triple, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    superseded: tuple[Triple, ...] = ()
    quarantine_id: str | None = None
    journal_ids: tuple[str, ...] = ()
    interpretation: Interpretation | None = None
    memory_items: tuple[str, ...] = ()


@dataclass(frozen=True)
class RollbackResult:
    """What :meth:`TellPipeline.rollback` undid."""

    edit_id: str
    assertions: int  # KG assertions removed plus restored
    memory_versions: int  # memory versions removed plus restored
    journal_ids: tuple[str, ...]  # parametric edits undone
    requeued: tuple[str, ...]  # edits of the same consolidation batch put back in the queue
    message: str


@dataclass(frozen=True)
class EditRecord:
    """One entry of :meth:`TellPipeline.history`.

    ``origin`` is ``tell`` for an edit from the edit log and ``kg`` for an assertion with no logged edit
    (e.g. loaded from the world's documents); for the latter ``edit_id`` is the assertion's edit id or id.
    """

    edit_id: str
    origin: Literal["tell", "kg"]
    who: str
    created_at: datetime
    namespace: str
    text: str
    triples: tuple[Triple, ...]
    augmented: tuple[Triple, ...]
    superseded: tuple[Triple, ...]
    status: str  # tell: applied | rolled_back; kg: valid | invalidated
    journal_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class QuarantineItem:
    """A statement held for review: an untrusted user contradicted a trusted fact."""

    id: str
    user: str
    created_at: datetime
    namespace: str
    text: str
    triples: tuple[Triple, ...]
    reason: str
    status: Literal["pending", "approved", "rejected"]
    reviewed_by: str | None = None
    edit_id: str | None = None  # the edit that applied it, once approved
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)  # posted with the fact; kept on approval


@dataclass(frozen=True)
class BulkFact:
    """One fact of a bulk load: a memory item (text, triple, source, metadata) and its KG assertion.

    Attributes:
        text: the sentence stored in the vector memory.
        triple: the fact asserted in the KG (``None``: memory only).
        source: the memory item's source (``"world:d-0001"``).
        metadata: the memory item's metadata.
        kg_source: the KG assertion's provenance source (a document id).
    """

    text: str
    triple: Triple | None = None
    source: str | None = None
    metadata: Mapping[str, MetadataValue] | None = None
    kg_source: str | None = None


@dataclass(frozen=True)
class BulkLoaded:
    """What one batch of a bulk load wrote, under ``edit_id`` (one edit for the whole load)."""

    edit_id: str
    memory_items: int
    assertions: int
