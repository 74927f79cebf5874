"""What the HTTP API and the MCP server do, with tenancy applied: one :class:`Service` over one agent.

Every operation takes the calling :class:`~agent.server._auth.Principal` and touches only the namespaces
it may use. The agent is one in-process stack (model, SQLite, FAISS, rdflib) that is not built for
concurrent writers, so a readers-writer lock orders operations: reads (edits, history, facts, search) run
together, writes (tell, facts create / update / delete, rollback) run alone, one at a time; no edit is lost
under concurrent clients.

Asks go through :meth:`Agent.ask <agent.Agent.ask>` on the agent :meth:`shared <agent.Agent.share>` with
these locks as its guards: concurrent questions, from any keys, form micro-batches (at most ``ask_batch``,
gathered for ``ask_wait_s`` after the oldest). A batch embeds its questions in one call (no lock held),
reads memory and KG under the read lock (linking and search: a few milliseconds), then releases it and
runs the model under the model's own lock (one batched ``generate``, one batched ``score`` call).
So a read or a write never waits for a model call, only for a write or a batch's short reading step; a
write that changes weights (``[tell] parametric``, detox) also takes the model's lock. Services built on
one agent share one set of locks.

Tenancy covers the vector memory, the knowledge graph (assertions carry a namespace; a key reads its own
namespaces and its shared ones, the reference world in ``world``) and the edit log. Every write goes through
the tell pipeline's Controller (conflicts judged within what the key can see, trust and quarantine, rate
limits, the edit log): there is no second door to the KG or memory. A missing id and another tenant's id get
byte-identical answers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING

from agent._answer import Answer
from agent.server._auth import Principal
from agent.server._locks import ServiceLocks
from memory import ItemPage, MemoryHit, MemoryItem, Scope, Triple, list_items
from tools.errors import InvalidInputError, NotFoundError, PermissionDeniedError, UnknownNamespaceError

if TYPE_CHECKING:
    from agent import Agent
    from agent.server._detox import DetoxEdit
    from agent.tell import EditRecord, QuarantineItem, RollbackResult, TellResult

__all__ = ["Service"]

logger = logging.getLogger(__name__)
MAX_EDITS = 500
MAX_EARLY_CHARS = 20_000  # the longest fact text the HTTP schema accepts
NO_FACT = "no such fact, or this key may not read it"
NO_EDIT = "no such edit, or this key may not read it"
NOT_YOURS = "only admins roll back other users' edits; this key may roll back its own edits in its namespaces"


def _admin_only(who: Principal, what: str = "review quarantined statements") -> None:
    if who.role != "admin":
        raise PermissionDeniedError(f"only admin keys {what}")


class Service:
    """The agent's operations for authenticated callers.

    Args:
        agent: an agent opened with its tell pipeline; its ``shared`` namespaces are ignored here (each key's
            grants decide what a question searches). It is :meth:`shared <agent.Agent.share>` with this
            service's locks (those of a service built on it before, if any).
        ask_batch, ask_wait_s: the micro-batches' size and gathering wait (``[server] ask_batch`` /
            ``ask_wait_ms``).
        ask_expect_s: the longest wait for the last batch's callers to come back (``[server] ask_expect_ms``;
            0: off; see :mod:`agent._batcher`).
    """

    def __init__(
        self, agent: Agent, *, ask_batch: int = 16, ask_wait_s: float = 0.005, ask_expect_s: float = 0.0
    ) -> None:
        self.agent = agent
        held = agent.ask_guards
        self._locks = held if isinstance(held, ServiceLocks) else ServiceLocks()
        self._rw = self._locks.rw
        self._model = self._locks.model  # one model call at a time: batches queue here, not on the reads
        agent.share(self._locks, max_batch=ask_batch, max_wait_s=ask_wait_s, expect_wait_s=ask_expect_s)
        self._writes_weights = agent.edits_weights

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the agent for a read that runs the model, its entity index caught up."""
        with self._rw.shared(), self._model:
            self.agent.wm.sync_entities()  # facts other processes told on this home
            yield

    def _reading(self) -> AbstractContextManager[None]:
        return self._rw.shared()

    @contextmanager
    def _writing(self, weights: bool = False) -> Iterator[None]:
        """Held alone; with the model's lock too when the write may change weights (``weights``, or tells
        that edit the model), so no model batch runs on half-edited weights."""
        with self._rw.exclusive(), self._model if weights or self._writes_weights else nullcontext():
            self.agent.wm.sync_entities()  # a tell links names against what other processes told too
            yield

    def close(self) -> None:
        """Answer the asks already queued, then refuse new ones (:class:`ServiceClosedError`)."""
        self.agent.stop_sharing()

    # -- ask / tell --------------------------------------------------------------------------------------

    def ask(self, who: Principal, question: str, namespace: str | None = None) -> Answer:
        """Answer from the KG, the key's namespaces (``namespace`` first, then its shared ones), or the model.

        The question is answered in a micro-batch with other callers' (see the module docstring); the
        answer is the one it gets alone, and ``latency_s`` includes the wait for its batch.

        Raises:
            InvalidInputError: an empty or oversized question (nothing is queued).
            ServiceClosedError: the service is shutting down.
        """
        return self.agent.ask(question, scopes=self._scopes(who, namespace))

    def ask_later(self, who: Principal, question: str, namespace: str | None = None) -> Future[Answer]:
        """:meth:`ask` without waiting: a future of the answer (an ``async`` route awaits it, holding no thread).

        Raises:
            InvalidInputError: an empty or oversized question (nothing is queued).
            ServiceClosedError: the service is shutting down.
        """
        return self.agent.ask_later(question, scopes=self._scopes(who, namespace))

    def follow_up(self, who: Principal, question: str, earlier: Sequence[str], namespace: str | None = None) -> str:
        """``question`` with its pronoun read as the latest name of the ``earlier`` turns it can stand for
        (:func:`agent._follow_up.follow_up`; names and classes as the key's namespaces see them); unchanged
        without one."""
        from agent._follow_up import follow_up

        scopes = self._scopes(who, namespace)
        with self._reading():
            asked, _ = follow_up(
                question,
                earlier,
                lambda t: self.agent.names_in(t, scopes=scopes),
                lambda n, kind: self.agent.pronoun_fits(n, kind, scopes=scopes),
            )
        return asked

    @staticmethod
    def _scopes(who: Principal, namespace: str | None) -> list[Scope]:
        return [Scope(agent_id=n) for n in who.search_namespaces(namespace)]

    def tell(self, who: Principal, statement: str, namespace: str | None = None) -> TellResult:
        """Tell a fact as the key's user, into a namespace it may write."""
        ns = who.check(namespace, write=True)
        self._embed_early(statement, sentences=True)
        with self._writing():
            self.agent.wm.sync_entities()  # facts told by other processes on this home
            if self.agent.concepts is not None and self.agent.concepts.parse(statement) is not None:
                return self.agent.tell(statement, user=who.user, namespace=ns)  # a concept definition (logged)
            return self.agent.pipeline.tell(statement, user=who.user, namespace=ns, visible=who.search_namespaces(ns))

    def _embed_early(self, text: str, sentences: bool = False) -> None:
        """Embed what a write will store before it takes the write lock (into the agent's embedder memo):
        the write then holds the lock for the SQL, FAISS and KG work, not for the embedding model, so the
        reads queued behind it wait less. ``sentences``: a told message, stored sentence by sentence
        (its questions and chit-chat are not stored)."""
        if self.agent.embedder is None or not text.strip() or len(text) > MAX_EARLY_CHARS:
            return  # an oversized text is the pipeline's to refuse, with its own message
        texts = [text]
        if sentences:
            from agent.tell._sentences import is_chitchat, is_question, split_sentences

            texts = [s for s in split_sentences(text) if not is_question(s) and not is_chitchat(s)]
        if texts:
            self.agent.embedder.embed(texts)

    def is_statement(self, who: Principal, text: str, namespace: str | None = None) -> bool:
        """Whether ``text`` reads as an edit (facts stated), not a question or chit-chat, to ``who``
        (names linked as ``who`` reads them in ``namespace``)."""
        sees = who.search_namespaces(namespace)
        if self.agent.concepts is not None and self.agent.concepts.parse(text) is not None:
            return True  # a concept definition ("A <concept> is a ...")
        with self._reading():
            self.agent.wm.sync_entities()
            return self.agent.pipeline.interpret(text, sees).kind == "edit"

    # -- edits -------------------------------------------------------------------------------------------

    def edits(
        self, who: Principal, namespace: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[EditRecord]:
        """Told edits in ``namespace`` (or all the key's readable ones), newest first, from ``offset`` on."""
        names = [who.check(namespace)] if namespace else list(who.readable)
        with self._reading():
            # one past the largest page (500) lets the route tell whether a next page exists
            return self.agent.pipeline.log.recent(names, min(limit, MAX_EDITS + 1), max(offset, 0))

    def edit(self, who: Principal, edit_id: str) -> EditRecord:
        """One logged edit in a namespace the key reads.

        Raises:
            UnknownEditError: no such edit, or one the key may not read: the same answer, which does not quote
                the id (no existence oracle).
        """
        from tools.errors import UnknownEditError

        with self._reading():
            try:
                record = self.agent.pipeline.log.edit(edit_id)
            except UnknownEditError:
                record = None
        if record is None or record.namespace not in who.readable:
            raise UnknownEditError(NO_EDIT)
        return record

    def rollback(self, who: Principal, edit_id: str) -> RollbackResult:
        """Undo an edit: its author may (in a namespace the key writes, or a concept definition while trusted to
        define concepts); admins may undo any edit.

        Raises:
            PermissionDeniedError: not an admin, and the edit is not the key's own in a namespace it writes:
                the same answer whether or not the edit exists (no existence oracle).
            UnknownEditError: an admin asked for an edit that does not exist.
        """
        from tools.errors import UnknownEditError

        with self._writing():
            try:
                record = self.agent.pipeline.log.edit(edit_id)
            except UnknownEditError:
                record = None
            if who.role != "admin":
                if record is None or record.who != f"user:{who.user}":
                    raise PermissionDeniedError(NOT_YOURS)
                if record.namespace not in who.writable and not self.agent.may_undo_definition(
                    edit_id, who.user, record.who
                ):  # a told concept definition lives in the shared namespace: its trusted author may undo it
                    raise PermissionDeniedError(NOT_YOURS)
            elif record is None:
                raise UnknownEditError(f"no edit {edit_id!r}")
            return self.agent.rollback(edit_id, user=who.user)

    def history(self, who: Principal, subject: str) -> list[EditRecord]:
        """Edits and KG assertions about ``subject`` in the namespaces the key reads (admins too)."""
        with self._reading():
            return self.agent.history(subject, namespaces=list(who.readable))

    # -- quarantine review (admins) ---------------------------------------------------------------------

    def quarantine(self, who: Principal, status: str | None = "pending") -> list[QuarantineItem]:
        """Statements held for review, oldest first: who told what, when, in which namespace, and why held.

        Raises:
            PermissionDeniedError: not an admin key.
        """
        _admin_only(who)
        with self._reading():
            return self.agent.pipeline.quarantine(status)

    def review(self, who: Principal, item_id: str, accept: bool) -> tuple[QuarantineItem, TellResult | None]:
        """Accept (apply as its author's edit, in its namespace) or reject a held statement.

        Raises:
            PermissionDeniedError: not an admin key.
            UnknownEditError: no such held statement.
            InvalidInputError: it was already reviewed.
        """
        _admin_only(who)
        with self._writing():
            pipeline = self.agent.pipeline
            result = pipeline.review(item_id, accept, who.user)
            return pipeline.log.quarantine_item(item_id), result

    # -- detox edits of the local model (admins) ---------------------------------------------------------

    def detox(
        self,
        who: Principal,
        adversarial_input: str,
        safe_response: str,
        unsafe_response: str | None,
        method: str = "dinm",
        layer: int | None = None,
    ) -> DetoxEdit:
        """Apply one detox edit (DINM by default) to the agent's model, journaled (see :mod:`agent.server._detox`).

        Raises:
            PermissionDeniedError: not an admin key.
            InvalidInputError, EditError: a bad instance or a remote model; nothing changed.
        """
        from agent.server._detox import apply_detox

        _admin_only(who, "apply detox edits")
        with self._writing(weights=True):
            return apply_detox(
                self.agent.lm, adversarial_input, safe_response, unsafe_response, method=method, layer=layer
            )

    def rollback_detox(self, who: Principal, edit_id: str) -> None:
        """Undo a detox edit exactly (admins).

        Raises:
            PermissionDeniedError: not an admin key.
            NotFoundError: no applied edit has this id.
        """
        from agent.server._detox import rollback_detox

        _admin_only(who, "roll back detox edits")
        with self._writing(weights=True):
            rollback_detox(self.agent.lm, edit_id)

    # -- facts (the vector memory, plus a KG triple when given) -------------------------------------------

    def add_fact(
        self,
        who: Principal,
        text: str,
        namespace: str | None = None,
        triple: Triple | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
    ) -> MemoryItem | TellResult:
        """Store a fact in a namespace the key may write, through the Controller (as a tell).

        Returns:
            The stored memory item, or the :class:`TellResult` of a statement held for review
            (``status == "quarantined"``: nothing was stored).
        """
        ns = who.check(namespace, write=True)
        self._embed_early(text)
        with self._writing():
            result = self.agent.pipeline.assert_fact(
                text, triple, who.user, ns, visible=who.search_namespaces(ns), metadata=metadata
            )
            if result.status == "quarantined" or not result.memory_items:
                return result
            return self.agent.wm.memory.get(result.memory_items[0])

    def get_fact(self, who: Principal, item_id: str) -> MemoryItem:
        """A fact the key may read (another tenant's fact is "not found", like a missing one)."""
        with self._reading():
            return self._readable_item(who, item_id)

    def update_fact(
        self,
        who: Principal,
        item_id: str,
        text: str | None,
        metadata: dict[str, str | int | float | bool] | None,
        triple: Triple | None = None,
    ) -> MemoryItem | TellResult:
        """A new version of a fact in a namespace the key may write, through the Controller (as an edit).

        See :meth:`TellPipeline.update_fact`: conflicts within what the key reads, trust, rate limit and the
        edit log apply; a new ``triple`` changes the KG in the same edit (its object only); a new ``text``
        alone keeps the fact's triple (it is not re-interpreted).

        Returns:
            The new version, or the :class:`TellResult` of an update held for review (``quarantined``:
            nothing changed).
        """
        if text is None and metadata is None and triple is None:
            raise InvalidInputError("give a new text, triple or metadata")
        if text is not None:
            self._embed_early(text)
        with self._writing():
            item = self._writable_item(who, item_id)
            ns = item.scope.agent_id
            result = self.agent.pipeline.update_fact(
                item, text, triple, who.user, visible=who.search_namespaces(ns), metadata=metadata
            )
            if result.status == "quarantined" or not result.memory_items:
                return result
            return self.agent.wm.memory.get(result.memory_items[0])

    def delete_fact(self, who: Principal, item_id: str) -> MemoryItem:
        """Delete a fact (kept in history); the KG assertion its edit wrote is withdrawn with it."""
        wm = self.agent.wm
        with self._writing():
            item = self._writable_item(who, item_id)
            pipeline = self.agent.pipeline
            pipeline.authorize_change(who.user, item.source)
            first = wm.memory.history(item_id)
            edit = next((v.edit_id for v in first if v.edit_id), None)
            with wm.transaction():
                deleted = wm.memory.delete(item_id)
                if edit is not None and item.triple is not None:
                    pipeline.retract(edit, who.user)
            return deleted

    def search_facts(self, who: Principal, query: str, namespace: str | None = None, k: int = 10) -> list[MemoryHit]:
        """The ``k`` facts most similar to ``query`` in ``namespace`` (or all the key's readable ones)."""
        names = [who.check(namespace)] if namespace else list(who.readable)
        hits: list[MemoryHit] = []
        with self._reading():
            for ns in names:
                try:
                    hits += self.agent.wm.memory.search(query, k=k, scope=Scope(agent_id=ns))
                except UnknownNamespaceError:  # nothing written there yet
                    continue
        return sorted(hits, key=lambda h: h.score, reverse=True)[:k]

    def fact_history(self, who: Principal, item_id: str) -> list[MemoryItem]:
        """Every version of a fact the key may read, oldest first (another tenant's fact is "not found")."""
        with self._reading():
            self._readable_item(who, item_id)
            return self.agent.wm.memory.history(item_id)

    def list_facts(
        self,
        who: Principal,
        namespace: str | None = None,
        *,
        subject: str | None = None,
        relation: str | None = None,
        as_of: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> ItemPage:
        """A page of the facts and passages valid at ``as_of`` in ``namespace`` (or all the key reads), newest
        first (:func:`memory.list_items`: SQL only, no embedding).

        Raises:
            PermissionDeniedError: a namespace the key may not read.
            InvalidInputError: a bad page or a naive datetime.
        """
        names = [who.check(namespace)] if namespace else list(who.readable)
        with self._reading():
            return list_items(
                self.agent.wm.db, names, subject=subject, relation=relation, as_of=as_of, limit=limit, offset=offset
            )

    def _readable_item(self, who: Principal, item_id: str) -> MemoryItem:
        """The item, or one "not found" answer, byte-identical for a missing id and another tenant's."""
        try:
            item = self.agent.wm.memory.get(item_id)
        except NotFoundError:
            item = None
        if item is None or item.scope.agent_id not in who.readable:
            raise NotFoundError(NO_FACT)
        return item

    def _writable_item(self, who: Principal, item_id: str) -> MemoryItem:
        item = self._readable_item(who, item_id)
        if item.scope.agent_id not in who.writable:
            raise PermissionDeniedError(f"this key ({who.role}) may not change namespace {item.scope.agent_id!r}")
        return item
