"""The Editor of the tell pipeline: writes a decided edit to the KG, the vector memory and the edit log together.

One ``wm.transaction()`` holds every write of an edit: KG assertions (told and derived facts; superseded
ones are invalidated, not deleted), memory items (the told sentences, derived facts rendered as sentences,
free text; memory items of the edit's own namespace stating a superseded fact are soft-deleted; other
namespaces are never written), the edit-log row and, in ``immediate``
parametric mode, the weight edit (undone through its journal if the transaction then fails). Rollback
undoes all of it under the same edit id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.tell._controller import Decision
from agent.tell._log import EditLog
from agent.tell._parametric import ParametricEditor
from agent.tell._patterns import render_statement
from agent.tell._records import BulkFact, BulkLoaded, Interpretation, RollbackResult
from agent.tell._trust import user_source
from agent.wiring import WorkingMemory
from kg import Provenance, normalize_mention
from memory import MetadataValue, Scope, Triple
from tools.errors import InvalidInputError, NotFoundError, StateConflictError, UnknownNamespaceError

__all__ = ["ItemUpdate", "TellEditor", "Written"]

logger = logging.getLogger(__name__)
_STALE_K = 10  # memory hits examined per superseded fact when looking for items that state it


@dataclass(frozen=True)
class Written:
    """What :meth:`TellEditor.write` wrote."""

    edit_id: str
    superseded: tuple[Triple, ...]
    memory_items: tuple[str, ...]
    journal_ids: tuple[str, ...]


@dataclass(frozen=True)
class ItemUpdate:
    """A new version of one stored memory item, written by an edit instead of new items.

    ``metadata`` ``None`` keeps the item's metadata; a mapping replaces it.
    """

    item_id: str
    text: str
    triple: Triple | None
    metadata: Mapping[str, MetadataValue] | None = None


def _key(t: Triple) -> tuple[str, str, str]:
    return normalize_mention(t.subject), t.relation, normalize_mention(t.object)


class TellEditor:
    """Writes and undoes edits.

    Args:
        wm: the working memory (KG, vector memory, entity linker, database).
        log: the edit log in the same database.
        parametric: optional weight edits (``off`` when ``None``).
        clock: the current timezone-aware time.
    """

    def __init__(
        self,
        wm: WorkingMemory,
        log: EditLog,
        parametric: ParametricEditor | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.wm = wm
        self.log = log
        self.parametric = parametric
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def mode(self) -> str:
        return "off" if self.parametric is None else self.parametric.mode

    def write(
        self,
        decision: Decision,
        interpretation: Interpretation,
        *,
        user: str,
        namespace: str,
        text: str,
        quarantine_id: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        update: ItemUpdate | None = None,
    ) -> Written:
        """Apply an ``apply`` or ``free_text`` decision, all or nothing.

        ``metadata`` is added to the metadata of every memory item written (its own keys ``kind``, ``user``
        and ``role`` win). With ``update``, no new memory item is written: the edit writes a new version of
        that item instead (its earlier versions stay in its history; rolling the edit back restores them).

        Raises:
            InvalidInputError: the decision is not one that writes.
            EditError: the ``immediate`` parametric edit failed (nothing was written).
            StoreError: a store failed (nothing was written).
        """
        edit_id = decision.edit_id
        if decision.action not in ("apply", "free_text") or edit_id is None:
            raise InvalidInputError(f"a {decision.action!r} decision writes nothing")
        graph, memory = self.wm.graph, self.wm.memory
        who = user_source(user)
        scope = Scope(agent_id=namespace)
        stale = [i for i in self._stale_items(decision, scope) if update is None or i != update.item_id]
        requests = []
        if self.parametric is not None and self.parametric.mode != "off" and decision.claims:
            requests = self.parametric.requests(decision.claims, decision.superseded)  # validated before writing

        extra: dict[str, MetadataValue] = dict(metadata or {})
        texts: list[str] = []
        triples: list[Triple | None] = []
        metas: list[dict[str, MetadataValue]] = []
        for claim in decision.claims:
            texts.append(claim.sentence)
            triples.append(claim.triple)
            metas.append({**extra, "kind": "told", "user": user, "role": decision.role})
        for t in decision.augmented:
            texts.append(render_statement(graph.schema, t.subject, t.relation, t.object))
            triples.append(t)
            metas.append({**extra, "kind": "derived", "user": user, "role": decision.role})
        for sentence in interpretation.free_text:
            texts.append(sentence)
            triples.append(None)
            metas.append({**extra, "kind": "free_text", "user": user, "role": decision.role})

        journal: list[str] = []
        superseded: list[Triple] = []
        try:
            with self.wm.transaction():
                for claim in decision.claims:
                    functional = graph.schema.relation(claim.triple.relation).functional
                    replaces = None if functional else claim.replaces
                    result = graph.add(claim.triple, Provenance(who, "tell", edit_id, namespace), replaces=replaces)
                    superseded += [a.triple for a in result.superseded]
                # What the writer saw and this edit replaces for its namespace: facts of its own namespace are
                # invalidated above; those of shared ones stay valid there and are shadowed for its readers.
                superseded += [t for t in decision.superseded if t not in superseded]
                for t in decision.augmented:
                    graph.add(t, Provenance(who, "tell:derived", edit_id, namespace))
                if update is None:
                    items = memory.add_many(
                        texts,
                        scope=scope,
                        triples=triples,
                        sources=[who] * len(texts),
                        metadatas=metas,
                        edit_id=edit_id,
                    )
                elif update.metadata is None:
                    items = [memory.update(update.item_id, update.text, triple=update.triple, edit_id=edit_id)]
                else:
                    items = [
                        memory.update(
                            update.item_id,
                            update.text,
                            triple=update.triple,
                            metadata=update.metadata,
                            edit_id=edit_id,
                        )
                    ]
                for item_id in stale:
                    memory.delete(item_id, edit_id=edit_id)
                if requests and self.mode == "immediate":
                    assert self.parametric is not None  # mode != off
                    journal.append(self.parametric.apply(requests))
                elif requests:
                    self.log.enqueue(edit_id, [r.to_json() for r in requests])
                self.log.add_edit(
                    edit_id=edit_id,
                    user=user,
                    at=self._clock(),
                    namespace=namespace,
                    text=text,
                    triples=[c.triple for c in decision.claims],
                    augmented=decision.augmented,
                    superseded=superseded,
                    journal_ids=journal,
                    quarantine_id=quarantine_id,
                )
        except BaseException:
            for journal_id in journal:  # the transaction rolled back: take the weights back too
                assert self.parametric is not None
                self.parametric.rollback(journal_id)
            raise
        self._index_entities([c.triple for c in decision.claims] + list(decision.augmented))
        logger.info(
            "edit %s by %s: %d fact(s), %d derived, %d memory item(s)",
            edit_id,
            who,
            len(decision.claims),
            len(decision.augmented),
            len(items),
        )
        return Written(edit_id, tuple(superseded), tuple(i.id for i in items), tuple(journal))

    def load(self, facts: Sequence[BulkFact], *, who: str, namespace: str, edit_id: str, text: str) -> BulkLoaded:
        """Write one batch of a bulk load under ``edit_id``, all or nothing (memory, KG and edit log together).

        The first batch of an edit id creates its log row; later ones append their facts to it. The KG's own
        rules apply (a functional relation's other object in ``namespace`` is superseded); nothing else is
        judged here (see :meth:`TellPipeline.load`). No weights change.

        Raises:
            InvalidInputError: a bad fact (nothing written), or ``edit_id`` was rolled back.
            StoreError: a store failed (nothing was written).
        """
        graph, memory = self.wm.graph, self.wm.memory
        exists = self.log.exists(edit_id)
        if exists and self.log.edit(edit_id).status != "applied":
            raise InvalidInputError(f"edit {edit_id} was rolled back; start a new load")
        triples = [f.triple for f in facts if f.triple is not None]
        with self.wm.transaction():
            items = memory.add_many(
                [f.text for f in facts],
                scope=Scope(agent_id=namespace),
                triples=[f.triple for f in facts],
                sources=[f.source for f in facts],
                metadatas=[f.metadata for f in facts],
                edit_id=edit_id,
            )
            assertions = graph.add_many(
                (f.triple, Provenance(who, f.kg_source, edit_id, namespace)) for f in facts if f.triple is not None
            )
            if exists:
                self.log.extend_edit(edit_id, triples)
            else:
                self.log.add_edit(
                    edit_id=edit_id,
                    user=who,
                    at=self._clock(),
                    namespace=namespace,
                    text=text,
                    triples=triples,
                    index_names=False,
                )
        logger.info("bulk edit %s by %s: %d memory item(s), %d assertion(s)", edit_id, who, len(items), assertions)
        return BulkLoaded(edit_id, len(items), assertions)

    def undo(self, edit_id: str, *, by: str) -> RollbackResult:
        """Roll back KG, memory and weights of ``edit_id`` together.

        Raises:
            UnknownEditError: no such edit (nothing changed).
            StateConflictError: it was already rolled back, or a later edit built on its memory items (roll
                that one back first); nothing changed.
        """
        record = self.log.edit(edit_id)
        if record.status != "applied":
            raise StateConflictError(f"edit {edit_id} was already rolled back")
        requeued: list[str] = []
        with self.wm.transaction():
            try:
                assertions = self.wm.graph.rollback(edit_id)
            except NotFoundError:
                assertions = 0  # free text only: nothing in the graph
            try:
                versions = self.wm.memory.rollback(edit_id)
            except NotFoundError:
                versions = 0
            except InvalidInputError as exc:
                later = self._later_edits(record.created_at, [*record.triples, *record.augmented])
                raise StateConflictError(
                    f"edit {edit_id} cannot be rolled back before the later edit(s) that replaced what it wrote: "
                    f"roll back {', '.join(later) or 'those'} first; nothing was changed"
                ) from exc
            self.log.close_edit(edit_id, by, self._clock())
            for journal_id in record.journal_ids:
                others = [e for e in self.log.batch_of(journal_id) if e != edit_id]
                if others:  # a consolidation batch: its other edits go back into the queue
                    self.log.requeue(journal_id)
                    for other in others:
                        ids = [j for j in self.log.edit(other).journal_ids if j != journal_id]
                        self.log.set_journal_ids(other, ids)
                    requeued += others
            self.log.drop_queued(edit_id)
            for journal_id in record.journal_ids:  # last: the weights change only if the rest succeeded
                if self.parametric is None:
                    logger.warning("edit %s changed weights (%s) but no model is loaded here", edit_id, journal_id)
                else:
                    self.parametric.rollback(journal_id)
        message = f"Rolled back edit {edit_id}: {assertions} KG assertion(s) and {versions} memory version(s) undone"
        if record.journal_ids:
            message += f", weights restored ({', '.join(record.journal_ids)})"
        if requeued:
            message += f"; {len(requeued)} other edit(s) of its batch wait for the next consolidation"
        logger.info(message)
        return RollbackResult(edit_id, assertions, versions, record.journal_ids, tuple(requeued), message + ".")

    # -- helpers ---------------------------------------------------------------------------------------

    def _stale_items(self, decision: Decision, scope: Scope) -> list[str]:
        """Active memory items in the edit's own namespace that state a fact it supersedes (found by search).

        Other namespaces are never touched: an edit changes only what its writer's namespace holds.
        """
        if not decision.superseded:
            return []
        wanted = {_key(t) for t in decision.superseded}
        found: dict[str, None] = {}
        for t in decision.superseded:
            query = render_statement(self.wm.graph.schema, t.subject, t.relation, t.object)
            try:
                hits = self.wm.memory.search(query, k=_STALE_K, scope=scope)
            except UnknownNamespaceError:  # nothing written there yet
                return []
            for hit in hits:
                item = hit.item
                if item.triple is not None and _key(item.triple) in wanted:
                    found.setdefault(item.id)
        return list(found)

    def _later_edits(self, after: datetime, triples: list[Triple]) -> list[str]:
        """Applied edits after ``after`` about the same subjects, newest first."""
        found: dict[str, None] = {}
        for name in {t.subject for t in triples}:
            for record in self.log.edits_touching(name):
                if record.status == "applied" and record.created_at > after:
                    found.setdefault(record.edit_id)
        return list(found)

    def _index_entities(self, triples: list[Triple]) -> None:
        for name in {n for t in triples for n in (t.subject, t.object)}:
            named = self.wm.graph.names_of(name)
            for namespace, entity in named:  # each namespace's names, for its readers only
                self.wm.entities.add(entity, namespace=namespace)
            if not named:
                logger.debug("entity %r not found after the edit", name)
