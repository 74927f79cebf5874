"""``TellPipeline``: OneEdit's Interpreter -> Controller -> Editor behind one entry point the agent calls."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import Settings, TellSettings
from agent.tell._controller import Controller, Decision, ModelBelief, new_edit_id
from agent.tell._editor import ItemUpdate, TellEditor
from agent.tell._interpreter import Interpreter
from agent.tell._log import EditLog
from agent.tell._messages import facts_text, summary
from agent.tell._patterns import render_statement
from agent.tell._records import (
    BulkFact,
    BulkLoaded,
    Claim,
    EditRecord,
    Interpretation,
    QuarantineItem,
    RollbackResult,
    TellResult,
    TellStatus,
)
from agent.tell._trust import check_user
from agent.wiring import WorkingMemory
from kg import WORLD_NAMESPACE, normalize_mention
from memory import MemoryItem, MetadataValue, Scope, Triple, unsafe_character
from tools.errors import InvalidInputError, NotFoundError, PermissionDeniedError, UnknownEditError

if TYPE_CHECKING:
    from tools.lm import LocalLanguageModel

__all__ = ["TellPipeline"]

logger = logging.getLogger(__name__)


class TellPipeline:
    """Told statements become edits of the working memory (and optionally the weights), with rollback.

    Args:
        wm: the working memory.
        interpreter: text -> claims (:class:`TemplateInterpreter` with the learned reader by default in :meth:`open`).
        controller: conflicts, trust, rate limits, augmentation.
        editor: writes and undoes edits.
        max_chars: longest message accepted.
        consolidate_batch: most facts per :meth:`consolidate` batch.

    Example:
        >>> pipeline = TellPipeline.open(wm, home.settings)  # doctest: +SKIP
        >>> pipeline.tell("The CEO of Acme Corp is Jane Roe.", user="alice").message  # doctest: +SKIP
        'Noted as edit e-7f3a01c2: (Acme Corp, CEO, Jane Roe). No conflict.'
        >>> pipeline.rollback("e-7f3a01c2", user="alice").assertions  # doctest: +SKIP
        1
    """

    def __init__(
        self,
        wm: WorkingMemory,
        interpreter: Interpreter,
        controller: Controller,
        editor: TellEditor,
        *,
        max_chars: int = 4_000,
        consolidate_batch: int = 64,
    ) -> None:
        self.wm = wm
        self.interpreter = interpreter
        self.controller = controller
        self.editor = editor
        self.max_chars = max_chars
        self.consolidate_batch = consolidate_batch

    @classmethod
    def open(
        cls,
        wm: WorkingMemory,
        settings: Settings | TellSettings,
        lm: LocalLanguageModel | None = None,
        *,
        interpreter: Interpreter | None = None,
        corpus: Sequence[str] | None = None,
        cache_dir: str | Path | None = None,
        model_belief: ModelBelief | None = None,
    ) -> TellPipeline:
        """Build the pipeline the settings describe: :func:`agent.wiring.open_tell_pipeline` (the composition
        root) with the same arguments.

        Raises:
            ConfigError: ``interpreter = "llm"`` without an endpoint, or a parametric mode without ``lm``.
        """
        from agent.wiring import open_tell_pipeline

        return open_tell_pipeline(
            wm, settings, lm, interpreter=interpreter, corpus=corpus, cache_dir=cache_dir, model_belief=model_belief
        )

    @property
    def edits_weights(self) -> bool:
        """Whether tells (and their rollbacks) change the model's weights (``[tell] parametric`` is on)."""
        return self.editor.parametric is not None

    @property
    def log(self) -> EditLog:
        return self.editor.log

    # -- tell ------------------------------------------------------------------------------------------

    def interpret(self, statement: str, visible: Sequence[str] | None = None) -> Interpretation:
        """The interpreter's reading of ``statement`` (validated; nothing is written).

        ``visible``: names link to known entities only as readers of these namespaces name them (``None``:
        every namespace's names), so another tenant's spellings and aliases are never read into it.

        Raises:
            InvalidInputError: empty, longer than ``max_chars``, or with a character no fact may hold
                (NUL, bidi controls: :func:`memory.unsafe_character`).
            ContradictoryStatementError: two claims give different objects to one functional (subject, relation).
        """
        if not isinstance(statement, str) or not statement.strip():
            raise InvalidInputError("the message is empty: tell a fact, e.g. 'The CEO of Acme Corp is Jane Roe.'")
        if len(statement) > self.max_chars:
            raise InvalidInputError(
                f"the message has {len(statement)} characters; at most {self.max_chars} are accepted"
            )
        bad = unsafe_character(statement)
        if bad is not None:  # refused as the stores refuse it, before anything is interpreted
            raise InvalidInputError(f"the message contains {bad}; remove it (nothing was stored)")
        if visible is None:
            return self.interpreter.interpret(statement)
        with self.wm.entities.scoped(visible):
            return self.interpreter.interpret(statement)

    def tell(
        self, statement: str, user: str, namespace: str = "default", visible: Sequence[str] | None = None
    ) -> TellResult:
        """Interpret ``statement`` from ``user`` and apply it (or quarantine it, or not: see ``status``).

        Args:
            statement: the message.
            user: who tells it (its trust role and rate limit apply).
            namespace: where the edit lands (KG assertions and memory items).
            visible: the namespaces the writer reads, in order of precedence; conflicts, trust and known
                facts are judged within them. Default: ``namespace`` and the shared world.

        Raises:
            InvalidInputError: empty or oversized message, bad user name or namespace; nothing is written.
            ContradictoryStatementError: contradictory claims in one message; nothing is written.
            RateLimitedError: the user is over the rate limit; nothing is written.
            EditError: the ``immediate`` parametric edit failed; nothing is written.
        """
        check_user(user)
        sees = self._visible(namespace, visible)
        interpretation = self.interpret(statement, sees)
        decision = self.controller.decide(interpretation, user, sees)
        return self._carry_out(decision, interpretation, user, namespace, statement)

    def assert_fact(
        self,
        text: str,
        triple: Triple | None,
        user: str,
        namespace: str = "default",
        visible: Sequence[str] | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> TellResult:
        """Store one given fact (a sentence, with the triple it states if given) through the Controller.

        The facts API's door to the KG and memory: the same conflicts, trust policy (quarantine), rate limit
        and edit log as :meth:`tell`, without interpreting ``text`` and without derived facts (the edit writes
        exactly this fact, so deleting the fact undoes all of it). Without a triple, or when the triple is
        already known to the writer, the sentence is kept as free-text memory (an edit too).

        Raises:
            InvalidInputError: bad text, triple, user or namespace; nothing is written.
            RateLimitedError: the user is over the rate limit; nothing is written.
        """
        check_user(user)
        sees = self._visible(namespace, visible)
        if not isinstance(text, str) or not text.strip() or len(text) > self.max_chars:
            raise InvalidInputError(f"a fact's text is 1-{self.max_chars} characters")
        decision = None
        if triple is not None:
            if not isinstance(triple, Triple):
                raise InvalidInputError(f"triple must be a memory.Triple, got {type(triple).__name__}")
            spec = self.wm.graph.schema.relation(triple.relation)
            claim = Claim(Triple(triple.subject, spec.id, triple.object), text)
            interpretation = Interpretation("edit", claims=(claim,), reason="given as a triple")
            decision = self.controller.decide(interpretation, user, sees)
        if decision is None or decision.action == "noop":
            interpretation = Interpretation("free_text", free_text=(text,), reason="given as text")
            decision = self.controller.decide(interpretation, user, sees)
        if decision.augmented:
            decision = replace(decision, augmented=())
        return self._carry_out(decision, interpretation, user, namespace, text, metadata=metadata)

    def load(
        self,
        facts: Sequence[BulkFact],
        *,
        who: str = WORLD_NAMESPACE,
        namespace: str = WORLD_NAMESPACE,
        edit_id: str | None = None,
        text: str = "bulk load",
    ) -> BulkLoaded:
        """The bulk door to the KG and memory: one batch of a trusted load, written as (part of) one edit.

        For loaders of reference data (``memory load-world``): ``who`` must be a trusted source of the trust
        policy (``world`` by default), so the facts count as trusted and untrusted users' contradictions of
        them are held for review; no per-fact conflict judgement, rate limit or derived facts (the KG's own
        rule still supersedes a functional relation's other object within ``namespace``). Pass the
        ``edit_id`` a first batch returned to continue the same edit; the edit log then holds one edit per
        load, and :meth:`rollback` of it (by an admin or trusted user) undoes the whole load.

        Raises:
            PermissionDeniedError: ``who`` is not a trusted source; nothing is written.
            InvalidInputError: bad facts, ``who`` or namespace, or a rolled-back ``edit_id``; nothing is written.
        """
        check_user(who)
        Scope(agent_id=namespace)  # validates the namespace
        if not self.controller.trust.is_trusted_source(who):
            raise PermissionDeniedError(f"bulk loads are trusted loads; {who!r} is not a trusted source")
        if isinstance(facts, BulkFact) or not all(isinstance(f, BulkFact) for f in facts):
            raise InvalidInputError("facts must be a sequence of BulkFact")
        return self.editor.load(facts, who=who, namespace=namespace, edit_id=edit_id or new_edit_id(), text=text)

    def update_fact(
        self,
        item: MemoryItem,
        text: str | None,
        triple: Triple | None,
        user: str,
        visible: Sequence[str] | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> TellResult:
        """Write a new version of a stored fact (memory item ``item``) through the Controller, as one edit.

        The update is judged like :meth:`assert_fact` (in the item's namespace, within ``visible``): an
        untrusted user may not change a fact from a trusted source (``PermissionDeniedError``), a new triple
        that contradicts a trusted fact is held for review (``status == "quarantined"``, nothing changes;
        approving it applies the held fact, with ``metadata``), the rate limit takes one token, and the edit
        is logged under a new edit id. The item keeps its id and gets a new version (earlier versions stay in
        its history); the new triple is asserted in the KG and the item's old one is superseded (functional
        relation, or the object it replaces); :meth:`rollback` of the edit restores the prior version and
        the old assertion.

        ``None`` keeps a field: without ``text`` the item keeps its text, without ``triple`` it keeps its
        triple, and a new text alone is *not* re-interpreted (the KG is unchanged, the edit logs the new
        text only): give the triple too when the sentence now states another fact. A new triple must keep the
        item's subject and relation (only its object may change); to state a fact about something else,
        delete the fact and store a new one.

        Raises:
            InvalidInputError: bad text, triple, user or namespace, or a triple with another subject or
                relation; nothing is written.
            PermissionDeniedError: an untrusted user and a trusted source; nothing is written.
            RateLimitedError: the user is over the rate limit; nothing is written.
        """
        check_user(user)
        if not isinstance(item, MemoryItem):
            raise InvalidInputError(f"item must be a memory.MemoryItem, got {type(item).__name__}")
        namespace = item.scope.agent_id
        if namespace is None:
            raise InvalidInputError(f"fact {item.id} is in no namespace; only namespaced facts are updated here")
        sees = self._visible(namespace, visible)
        new_text = item.text if text is None else text
        if not isinstance(new_text, str) or not new_text.strip() or len(new_text) > self.max_chars:
            raise InvalidInputError(f"a fact's text is 1-{self.max_chars} characters")
        self._check_may_change(user, item.source)
        old = item.triple
        new = old
        if triple is not None:
            if not isinstance(triple, Triple):
                raise InvalidInputError(f"triple must be a memory.Triple, got {type(triple).__name__}")
            new = Triple(triple.subject, self.wm.graph.schema.relation(triple.relation).id, triple.object)
            if old is not None and (
                normalize_mention(new.subject) != normalize_mention(old.subject) or new.relation != old.relation
            ):
                raise InvalidInputError(
                    f"an update may change the object of the fact ({old.subject}, {old.relation}, ...) only; "
                    "delete it and store the new fact instead (nothing was changed)"
                )
        role = self.controller.trust.role(user)
        decision: Decision | None = None
        interpretation = Interpretation("free_text", reason="fact updated")
        if new is not None and (old is None or normalize_mention(new.object) != normalize_mention(old.object)):
            claim = Claim(new, new_text, replaces=None if old is None else old.object)
            interpretation = Interpretation("edit", claims=(claim,), reason="fact updated")
            decision = self.controller.decide(interpretation, user, sees)
            if decision.action == "quarantine":
                return self._carry_out(decision, interpretation, user, namespace, new_text, metadata=metadata)
            if decision.action == "noop":  # the writer already sees the new fact: only the item changes
                decision = None
            elif decision.augmented:
                decision = replace(decision, augmented=())
        if decision is None:
            self.controller.limiter.check(user, role)
            interpretation = Interpretation("free_text", reason="fact updated")
            decision = Decision("free_text", new_edit_id(), role, reason="fact updated")
        update = ItemUpdate(item.id, new_text, new, None if metadata is None else dict(metadata))
        return self._carry_out(decision, interpretation, user, namespace, new_text, update=update)

    def _check_may_change(self, user: str, source: str | None) -> None:
        trust = self.controller.trust
        if (
            trust.role(user) == "untrusted"
            and source is not None
            and source != f"user:{user}"
            and trust.is_trusted_source(source)
        ):
            raise PermissionDeniedError(
                "an untrusted user may not change a trusted fact; tell the correction instead (it is reviewed)"
            )

    def authorize_change(self, user: str, source: str | None) -> None:
        """Check that ``user`` may change or delete a stored fact whose provenance is ``source``.

        An untrusted user may not change a fact from a trusted source (theirs excepted: tell the correction
        instead, and it is reviewed); every change takes a token of the user's rate limit.

        Raises:
            PermissionDeniedError: an untrusted user and a trusted source; nothing is taken.
            RateLimitedError: the user is over the rate limit.
        """
        check_user(user)
        self._check_may_change(user, source)
        self.controller.limiter.check(user, self.controller.trust.role(user))

    def retract(self, edit_id: str, user: str) -> None:
        """Withdraw the KG assertions of a fact's edit and close it in the log (its memory item is deleted by
        the caller in the same ``wm.transaction()``); an edit with nothing in the graph is only closed."""
        try:
            self.wm.graph.rollback(edit_id)
        except NotFoundError:
            logger.debug("edit %s asserted nothing in the graph", edit_id)
        if self.log.exists(edit_id) and self.log.edit(edit_id).status == "applied":
            self.log.close_edit(edit_id, user, datetime.now(UTC))

    @staticmethod
    def _visible(namespace: str, visible: Sequence[str] | None) -> list[str]:
        Scope(agent_id=namespace)  # validates the namespace
        if visible is None:
            return list(dict.fromkeys([namespace, WORLD_NAMESPACE]))
        if isinstance(visible, str):
            raise InvalidInputError("visible must be a sequence of namespace names, not one string")
        return list(dict.fromkeys([namespace, *visible]))

    def _carry_out(
        self,
        decision: Decision,
        interpretation: Interpretation,
        user: str,
        namespace: str,
        statement: str,
        quarantine_id: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        update: ItemUpdate | None = None,
    ) -> TellResult:
        told = tuple(c.triple for c in (*decision.claims, *decision.known))
        kind, reading = interpretation.kind, interpretation
        if decision.action == "not_an_edit":
            what = "a question" if interpretation.kind == "question" else "chit-chat"
            return TellResult(kind=kind, status="not_an_edit", message=f"Not an edit: {what}.", interpretation=reading)
        if decision.action == "noop":
            message = f"Already known: {facts_text(self.wm.graph.schema, told)}."
            return TellResult(kind=kind, status="noop", triples=told, message=message, interpretation=reading)
        if decision.action == "quarantine":
            item_id = "q-" + secrets.token_hex(4)
            self.log.add_quarantine(
                item_id, user, datetime.now(UTC), namespace, statement, told, decision.reason, metadata=metadata
            )
            logger.warning("quarantined %s from %s: %s", item_id, user, decision.reason)
            message = f"Held for review as {item_id}: {decision.reason}. Nothing was changed."
            return TellResult(
                kind=kind,
                status="quarantined",
                triples=told,
                conflicts=decision.conflicts,
                message=message,
                quarantine_id=item_id,
                interpretation=reading,
            )
        try:
            written = self.editor.write(
                decision,
                interpretation,
                user=user,
                namespace=namespace,
                text=statement,
                quarantine_id=quarantine_id,
                metadata=metadata,
                update=update,
            )
        except BaseException:
            self.controller.limiter.refund(user)
            raise
        status: TellStatus = "applied" if decision.action == "apply" else "free_text"
        message = summary(
            self.wm.graph.schema, decision, written.edit_id, written.superseded, interpretation.suggestions
        )
        return TellResult(
            kind=kind,
            status=status,
            edit_id=written.edit_id,
            triples=tuple(c.triple for c in decision.claims),
            augmented=decision.augmented,
            conflicts=decision.conflicts,
            superseded=written.superseded,
            message=message,
            journal_ids=written.journal_ids,
            interpretation=reading,
            memory_items=written.memory_items,
        )

    # -- rollback, history, review ---------------------------------------------------------------------

    def rollback(self, edit_id: str, user: str) -> RollbackResult:
        """Undo edit ``edit_id`` in the KG, the memory and the weights together.

        Its author, admins and trusted users may roll an edit back.

        Raises:
            UnknownEditError: no such edit; nothing changed.
            PermissionDeniedError: ``user`` may not roll it back.
            StateConflictError: already rolled back, or a later edit must be rolled back first.
        """
        check_user(user)
        if not isinstance(edit_id, str) or not edit_id.strip():
            raise UnknownEditError(f"no edit {edit_id!r}")
        record = self.log.edit(edit_id.strip())
        if record.who != f"user:{user}" and not self.controller.trust.is_trusted_user(user):
            raise PermissionDeniedError(f"{user} may not roll back {record.who}'s edit {edit_id}")
        return self.editor.undo(edit_id.strip(), by=user)

    def history(self, subject: str, namespaces: Sequence[str] | None = None) -> list[EditRecord]:
        """Edits touching ``subject`` (edit log) and its other KG assertions (e.g. loaded facts), newest first.

        ``namespaces``: only edits and assertions in these (``None``: all); a name known only in another
        namespace is not resolved either.
        """
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidInputError("history needs a subject name")
        names = {subject.strip()}
        names |= {
            m.link.entity.label
            for m in self.wm.entities.find_mentions(subject, namespaces=namespaces)
            if m.surface == normalize_mention(subject)
        }
        records: dict[str, EditRecord] = {}
        for name in names:
            for record in self.log.edits_touching(name):
                if namespaces is None or record.namespace in namespaces:
                    records[record.edit_id] = record
        for name in names:
            for a in self.wm.graph.history(name, namespaces=namespaces):
                if a.edit_id is not None and a.edit_id in records:
                    continue
                key = a.edit_id if a.edit_id and not self.log.exists(a.edit_id) else a.id
                records.setdefault(
                    key,
                    EditRecord(
                        edit_id=key,
                        origin="kg",
                        who=a.who,
                        created_at=a.recorded_at,
                        namespace=a.namespace,
                        text=a.source or "",
                        triples=(a.triple,),
                        augmented=(),
                        superseded=(),
                        status="valid" if a.invalid_at is None else "invalidated",
                    ),
                )
        return sorted(records.values(), key=lambda r: r.created_at, reverse=True)

    def quarantine(self, status: str | None = "pending") -> list[QuarantineItem]:
        """Statements held for review (``pending`` by default; ``None`` for all)."""
        if status not in (None, "pending", "approved", "rejected"):
            raise InvalidInputError(f"status must be pending, approved, rejected or None, got {status!r}")
        return self.log.quarantined(status)  # type: ignore[arg-type]

    def review(self, item_id: str, approve: bool, user: str) -> TellResult | None:
        """Approve (apply, as its author's edit) or reject a quarantined statement; admins only.

        Returns:
            The applied edit's result when approved, else ``None``.

        Raises:
            PermissionDeniedError: ``user`` is not an admin.
            UnknownEditError: no such quarantined statement.
            InvalidInputError: it was already reviewed.
        """
        check_user(user)
        if self.controller.trust.role(user) != "admin":
            raise PermissionDeniedError(f"only admins review quarantined statements; {user} is not one")
        item = self.log.quarantine_item(item_id)
        if item.status != "pending":
            raise InvalidInputError(f"{item_id} was already {item.status}")
        result = None
        if approve:
            with self.wm.entities.scoped(self._visible(item.namespace, None)):
                interpretation = self.interpreter.interpret(item.text)
            if {c.triple for c in interpretation.claims} != set(item.triples):  # a fact given as a triple
                claims = tuple(Claim(t, item.text) for t in item.triples)
                interpretation = Interpretation("edit", claims=claims, reason="held fact, approved")
            # As the admin (never quarantined), judged within what the author's namespace sees.
            decision = self.controller.decide(interpretation, user, self._visible(item.namespace, None))
            result = self._carry_out(
                decision, interpretation, item.user, item.namespace, item.text, item.id, metadata=item.metadata or None
            )
        self.log.review(item_id, approve, user, datetime.now(UTC), result.edit_id if result else None)
        return result

    def consolidate(self) -> str | None:
        """Write the queued facts (``consolidate`` mode) into the weights as one batch; returns its journal id."""
        parametric = self.editor.parametric
        if parametric is None or parametric.mode != "consolidate":
            raise InvalidInputError("consolidate() needs parametric = 'consolidate' in the [tell] settings")
        pending = self.log.pending(self.consolidate_batch)
        if not pending:
            return None
        from tools.edit import EditRequest

        journal_id = parametric.apply_batch([EditRequest.from_json(req) for _, _, req in pending])
        try:
            with self.wm.db.transaction():
                self.log.mark_done([seq for seq, _, _ in pending], journal_id)
                for edit_id in dict.fromkeys(e for _, e, _ in pending):
                    ids = [*self.log.edit(edit_id).journal_ids, journal_id]
                    self.log.set_journal_ids(edit_id, ids)
        except BaseException:
            parametric.rollback(journal_id)
            raise
        return journal_id

    # -- messages --------------------------------------------------------------------------------------

    def render(self, triple: Triple) -> str:
        """A plain sentence stating ``triple``."""
        return render_statement(self.wm.graph.schema, triple.subject, triple.relation, triple.object)
