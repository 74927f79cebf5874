"""What the HTTP API and the MCP server do, with tenancy applied: one :class:`Service` over one agent.

Every operation takes the calling :class:`~agent.server._auth.Principal` and touches only the namespaces
it may use. The agent is one in-process stack (model, SQLite, FAISS, rdflib) that is not built for
concurrent writers, so a readers-writer lock orders operations: reads (edits, history, facts, search) and
asks run together, writes (tell, facts create / update / delete, rollback) run alone, one at a time. Asks
also take the model's own lock, so a read never waits behind a queue of asks, only behind a write; no
edit is lost under concurrent clients.

Tenancy covers the vector memory (scoped by namespace) and the edit log; the knowledge graph is one graph
shared by all tenants (as the reference world's facts are), so KG answers are visible to every key.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from typing import TYPE_CHECKING

from agent._agent import check_question
from agent._answer import Answer
from agent.server._auth import Principal
from agent.server._locks import ReadWriteLock
from kg import Provenance
from memory import MemoryHit, MemoryItem, Scope, Triple
from tools.errors import InvalidInputError, NotFoundError, PermissionDeniedError, UnknownNamespaceError

if TYPE_CHECKING:
    from agent import Agent
    from agent.tell import EditRecord, RollbackResult, TellResult

__all__ = ["Service"]

logger = logging.getLogger(__name__)
MAX_EDITS = 500


class Service:
    """The agent's operations for authenticated callers.

    Args:
        agent: an agent opened with its tell pipeline; its ``shared`` namespaces are ignored here (each key's
            grants decide what a question searches).
    """

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._rw = ReadWriteLock()
        self._model = threading.Lock()  # one forward pass at a time: asks queue here, not on the reads

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the agent for a read that runs the model (as an ask does), its entity index caught up."""
        with self._rw.shared(), self._model:
            self.agent.wm.sync_entities()  # facts other processes told on this home
            yield

    def _reading(self) -> AbstractContextManager[None]:
        return self._rw.shared()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        with self._rw.exclusive():
            self.agent.wm.sync_entities()  # a tell links names against what other processes told too
            yield

    # -- ask / tell --------------------------------------------------------------------------------------

    def ask(self, who: Principal, question: str, namespace: str | None = None) -> Answer:
        """Answer from the KG, the key's namespaces (``namespace`` first, then its shared ones), or the model."""
        scopes = [Scope(agent_id=n) for n in who.search_namespaces(namespace)]
        checked = check_question(question)
        start = time.perf_counter()
        with self.locked():
            signals = self.agent.collector.collect([checked], scopes)
            answer = self.agent.decide(signals[0])
        return replace(answer, latency_s=time.perf_counter() - start)

    def tell(self, who: Principal, statement: str, namespace: str | None = None) -> TellResult:
        """Tell a fact as the key's user, into a namespace it may write."""
        ns = who.check(namespace, write=True)
        with self._writing():
            return self.agent.tell(statement, user=who.user, namespace=ns)

    def is_statement(self, text: str) -> bool:
        """Whether ``text`` reads as an edit (facts stated), not a question or chit-chat."""
        with self._reading():
            self.agent.wm.sync_entities()
            return self.agent.pipeline.interpret(text).kind == "edit"

    # -- edits -------------------------------------------------------------------------------------------

    def edits(self, who: Principal, namespace: str | None = None, limit: int = 100) -> list[EditRecord]:
        """Told edits in ``namespace`` (or all the key's readable ones), newest first."""
        names = [who.check(namespace)] if namespace else list(who.readable)
        marks = ", ".join("?" for _ in names)
        with self._reading():
            log = self.agent.pipeline.log
            with self.agent.wm.db.read() as conn:
                rows = conn.execute(
                    f"SELECT edit_id FROM tell_edits WHERE namespace IN ({marks}) ORDER BY created_at DESC LIMIT ?",
                    (*names, min(limit, MAX_EDITS)),
                ).fetchall()
            return [log.edit(row[0]) for row in rows]

    def rollback(self, who: Principal, edit_id: str) -> RollbackResult:
        """Undo an edit: its author may; only admins may undo others' edits.

        Raises:
            UnknownEditError: no such edit, or one in a namespace the key may not change (the same answer).
            PermissionDeniedError: another user's edit and the key is not an admin's.
        """
        from tools.errors import UnknownEditError

        with self._writing():
            try:
                record = self.agent.pipeline.log.edit(edit_id)
            except UnknownEditError:
                raise UnknownEditError(f"no edit {edit_id!r}") from None
            if record.namespace not in who.writable and who.role != "admin":
                raise UnknownEditError(f"no edit {edit_id!r}")
            if record.who != f"user:{who.user}" and who.role != "admin":
                raise PermissionDeniedError(f"only admins roll back other users' edits ({edit_id} is {record.who}'s)")
            return self.agent.rollback(edit_id, user=who.user)

    def history(self, who: Principal, subject: str) -> list[EditRecord]:
        """Edits about ``subject``: the shared KG's assertions and told edits in the key's namespaces."""
        readable = set(who.readable)
        with self._reading():
            records = self.agent.history(subject)
        return [r for r in records if r.origin == "kg" or r.namespace in readable or who.role == "admin"]

    # -- facts (the vector memory, plus a KG triple when given) -------------------------------------------

    def add_fact(
        self,
        who: Principal,
        text: str,
        namespace: str | None = None,
        triple: Triple | None = None,
        metadata: dict[str, str | int | float | bool] | None = None,
    ) -> MemoryItem:
        """Store a fact in a namespace the key may write; a triple is also asserted in the knowledge graph."""
        ns = who.check(namespace, write=True)
        fact_edit = "f-" + secrets.token_hex(6)
        wm = self.agent.wm
        with self._writing():
            if triple is None:
                return wm.memory.add(
                    text, scope=Scope(agent_id=ns), source=f"user:{who.user}", metadata=metadata or None
                )
            with wm.transaction():
                item = wm.memory.add(
                    text, scope=Scope(agent_id=ns), triple=triple, source=f"user:{who.user}",
                    metadata=metadata or None, edit_id=fact_edit,
                )  # fmt: skip
                wm.graph.add(triple, Provenance(who=f"user:{who.user}", source=f"fact:{item.id}", edit_id=fact_edit))
            wm.refresh_entities()
            return item

    def get_fact(self, who: Principal, item_id: str) -> MemoryItem:
        """A fact the key may read (another tenant's fact is "not found", like a missing one)."""
        with self._reading():
            item = self.agent.wm.memory.get(item_id)
        if item.scope.agent_id not in who.readable:
            raise NotFoundError(f"no memory item {item_id!r}")
        return item

    def update_fact(
        self, who: Principal, item_id: str, text: str | None, metadata: dict[str, str | int | float | bool] | None
    ) -> MemoryItem:
        """A new version of a fact in a namespace the key may write."""
        if text is None and metadata is None:
            raise InvalidInputError("give a new text or metadata")
        with self._writing():
            self._writable_item(who, item_id)
            if metadata is None:
                return self.agent.wm.memory.update(item_id, text)
            return self.agent.wm.memory.update(item_id, text, metadata=metadata)

    def delete_fact(self, who: Principal, item_id: str) -> MemoryItem:
        """Delete a fact (kept in history); a KG triple it asserted is withdrawn with it."""
        wm = self.agent.wm
        with self._writing():
            self._writable_item(who, item_id)
            first = wm.memory.history(item_id)
            fact_edit = next((v.edit_id for v in first if v.edit_id and v.edit_id.startswith("f-")), None)
            with wm.transaction():
                deleted = wm.memory.delete(item_id)
                if fact_edit is not None:
                    with suppress(NotFoundError):  # the triple was already known: nothing of ours to withdraw
                        wm.graph.rollback(fact_edit)
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

    def _writable_item(self, who: Principal, item_id: str) -> MemoryItem:
        item = self.agent.wm.memory.get(item_id)
        if item.scope.agent_id not in who.readable:
            raise NotFoundError(f"no memory item {item_id!r}")
        if item.scope.agent_id not in who.writable:
            raise PermissionDeniedError(f"this key ({who.role}) may not change namespace {item.scope.agent_id!r}")
        return item
