"""The agent: ask (route to KG, retrieval, the model's own knowledge, or abstain), tell, rollback, history.

``Agent.open(home)`` builds the default stack from a home directory (through the composition root,
:mod:`agent.wiring`); tests and other callers can pass the parts to the constructor instead. The namespace
of a question is the memory scope searched (``Scope(agent_id=namespace)``) together with the shared namespaces
(the reference world's documents live in ``"world"``).

One ask path: :meth:`Agent.ask`, :meth:`Agent.ask_many` and :meth:`Agent.ask_later` all answer through the same
steps (concept desk, signals read from memory and the KG, the model's batched calls, the policy). An agent
shared by threads (the server) is :meth:`Agent.share`-d: its asks then hold the caller's :class:`AskGuards`
and concurrent asks are answered together in micro-batches (:class:`~agent._batcher.AskBatcher`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from agent._answer import Answer, Signals
from agent._batcher import AskBatcher
from agent._policy import PolicyThresholds, decide
from agent._signals import SignalCollector
from agent._work import WorkCounts
from memory import MemoEmbedder, Scope
from tools.errors import ContradictoryStatementError, InvalidInputError

if TYPE_CHECKING:
    from agent._concepts import ConceptDesk
    from agent.config import Home
    from agent.tell import EditRecord, PronounKind, RollbackResult, TellPipeline, TellResult
    from agent.wiring import WorkingMemory
    from tools.lm import LanguageModel

__all__ = ["MAX_QUESTION_CHARS", "Agent", "AskGuards"]

logger = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 2_000


def check_question(question: object) -> str:
    """A non-empty question of at most :data:`MAX_QUESTION_CHARS` characters.

    Raises:
        InvalidInputError: anything else.
    """
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError("a question must be a non-empty string")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInputError(f"a question must be at most {MAX_QUESTION_CHARS} characters, got {len(question)}")
    return question.strip()


REFUSAL = "I can't help with that: it asks for something that could cause harm."


class RequestGuard(Protocol):
    """Probability that each question is a harmful request (higher is more likely harmful)."""

    def unsafe_probability(self, responses: Sequence[str]) -> list[float]: ...


class AskGuards(Protocol):
    """What an ask holds while it works on an agent shared with other threads (see :meth:`Agent.share`).

    ``reading`` is held while the ask reads memory and the KG (linking, retrieval: milliseconds), so that
    no write lands half-way through; ``answering`` while it runs the model (batched ``generate`` /
    ``score``), so that no weight edit lands mid-batch. The two are never held together.
    """

    def reading(self) -> AbstractContextManager[object]: ...

    def answering(self) -> AbstractContextManager[object]: ...


class _Unguarded:
    """The guards of an agent used by one thread at a time: nothing to hold."""

    def reading(self) -> AbstractContextManager[object]:
        return nullcontext()

    def answering(self) -> AbstractContextManager[object]:
        return nullcontext()


AskItem = tuple[str, tuple[Scope, ...]]  # a checked question and the scopes it searches


class Agent:
    """Answers questions from the knowledge graph, the vector memory or the model, or abstains.

    Args:
        wm: the working memory (vector memory, KG, linkers, retriever).
        lm: the language model (local for parametric edits; any backend for answering).
        thresholds: the routing policy's thresholds (``factagent calibrate`` fits them).
        shared: namespaces every question also searches.
        tell: the tell pipeline (``agent.tell``); ``None`` makes the agent read-only.
        guard: scores each question's probability of being a harmful request (e.g. the world's request
            guard, :data:`eval.world.safety.GUARD_FILE`); at 0.5 or more the agent refuses (action ``refuse``)
            with a reason instead of answering. ``None``: no guard.
        concepts: the concept desk (``agent.ConceptDesk``): when given, concept questions ("What is a
            <concept>?", "Is X a <concept>?") are answered from the KG's concepts first, and concept definitions
            ("A <concept> is a ...") are told to it. ``None``: no concept handling.
        embedder: the memoising embedder the working memory and the guard use (``Agent.open`` passes it):
            each question is then embedded once per batch, and :meth:`work` counts what it embedded.
        paraphrases: other phrasings of an open question the model is asked (their agreement is a signal;
            the calibrated thresholds hold for the number they were fitted with, ``[policy] paraphrases``).
    """

    def __init__(
        self,
        wm: WorkingMemory,
        lm: LanguageModel,
        *,
        thresholds: PolicyThresholds | None = None,
        shared: Sequence[str] = ("world",),
        tell: TellPipeline | None = None,
        guard: RequestGuard | None = None,
        concepts: ConceptDesk | None = None,
        embedder: MemoEmbedder | None = None,
        paraphrases: int = 2,
    ) -> None:
        self.wm = wm
        self.lm = lm
        self.thresholds = thresholds or PolicyThresholds()
        self.shared = tuple(shared)
        self.embedder = embedder
        self.collector = SignalCollector(
            wm.retriever,
            wm.entities,
            wm.relations,
            wm.graph.schema.templates(),
            lm,
            n_paraphrases=paraphrases,
            warm=embedder.embed if embedder is not None else None,
            inverses={r.id: r.inverses for r in wm.graph.schema.relations},
        )
        self._tell = tell
        self.guard = guard
        self.concepts = concepts
        self._guards: AskGuards = _Unguarded()
        self._batcher: AskBatcher[AskItem, Answer] | None = None

    def scopes(self, namespace: str) -> list[Scope]:
        """The memory scopes a question in ``namespace`` searches."""
        names = dict.fromkeys([namespace, *self.shared])
        return [Scope(agent_id=n) for n in names]

    def subject_of(self, text: str, namespace: str = "default", *, scopes: Sequence[Scope] | None = None) -> str | None:
        """The subject a question (or statement) is about, as :meth:`ask` links it (names as a reader of
        ``namespace``, or of ``scopes`` instead, sees them); ``None`` when it names none."""
        searched = self.scopes(namespace) if scopes is None else scopes
        link = self.collector.link(text, [s.agent_id for s in searched if s.agent_id is not None] or None)
        return link.subject if link is not None else None

    def names_in(self, text: str, namespace: str = "default", *, scopes: Sequence[Scope] | None = None) -> list[str]:
        """The names a turn speaks of, most salient first: the subject it links to as a question
        (:meth:`subject_of`), then the names of the facts the tell interpreter reads in it (claims, then the
        readings it would offer back), then the known names it mentions. Nothing is written."""
        searched = self.scopes(namespace) if scopes is None else scopes
        visible = [s.agent_id for s in searched if s.agent_id is not None]
        names = [self.subject_of(text, scopes=searched) or ""]
        if self._tell is not None:
            try:
                read = self._tell.interpret(text, visible or None)
            except (InvalidInputError, ContradictoryStatementError):  # a turn that states nothing readable
                read = None
            for claim in () if read is None else (*read.claims, *read.suggestions):
                names += [claim.triple.subject, claim.triple.object]
        with self.wm.entities.scoped(visible) if visible else nullcontext():
            names += [m.link.entity.label for m in sorted(self.wm.entities.find_mentions(text), key=lambda m: m.start)]
        return [n for n in dict.fromkeys(names) if n]

    def pronoun_fits(
        self, name: str, kind: PronounKind, namespace: str = "default", *, scopes: Sequence[Scope] | None = None
    ) -> bool:
        """Whether ``name`` can be what a pronoun of ``kind`` stands for, by the classes the graph (as a reader
        of ``namespace``, or of ``scopes``) knows of it (:func:`agent.tell.pronoun_fits`)."""
        from agent.tell import pronoun_fits
        from agent.tell._types import TypeCheck

        searched = self.scopes(namespace) if scopes is None else scopes
        visible = [s.agent_id for s in searched if s.agent_id is not None]
        schema = self.wm.graph.schema
        with self.wm.entities.scoped(visible) if visible else nullcontext():
            classes = TypeCheck(schema, self.wm.entities, self.wm.graph).classes(name)
        return pronoun_fits(schema, classes, kind)

    def work(self) -> WorkCounts:
        """What answering has cost so far: asks, model batches and prompts, embedder batches and texts."""
        e = self.embedder.counts() if self.embedder is not None else None
        return self.collector.work.counts(e.calls if e else 0, e.texts if e else 0)

    def signals(
        self, questions: Sequence[str], namespace: str = "default", *, scopes: Sequence[Scope] | None = None
    ) -> list[Signals]:
        """Measured signals for each question, every one of them (no decision; what calibration needs);
        ``scopes`` replaces the namespace's scopes."""
        checked = [check_question(q) for q in questions]
        self.wm.sync_entities()  # names other processes told on this home
        return self.collector.collect(checked, self.scopes(namespace) if scopes is None else list(scopes))

    def ask(self, question: str, namespace: str = "default", *, scopes: Sequence[Scope] | None = None) -> Answer:
        """Answer one question (see :meth:`ask_many`); on a shared agent, in a micro-batch with other
        threads' questions (:meth:`share`), the answer being the one it gets alone.

        Raises:
            InvalidInputError: an empty or oversized question (nothing is answered).
            ServiceClosedError: the agent was shared and :meth:`stop_sharing` was called.
        """
        if self._batcher is None:
            return self.ask_many([question], namespace, scopes=scopes)[0]
        return self.ask_later(question, namespace, scopes=scopes).result()

    def ask_later(
        self, question: str, namespace: str = "default", *, scopes: Sequence[Scope] | None = None
    ) -> Future[Answer]:
        """:meth:`ask` without waiting: a future of the answer, whose ``latency_s`` counts from this call
        (the wait for its micro-batch included). Unshared, the answer is computed before this returns.

        Raises:
            InvalidInputError: an empty or oversized question (nothing is queued).
            ServiceClosedError: the agent was shared and :meth:`stop_sharing` was called.
        """
        item = (check_question(question), tuple(self.scopes(namespace) if scopes is None else scopes))
        start = time.perf_counter()
        done: Future[Answer] = Future()
        if self._batcher is None:
            try:
                done.set_result(_with_latency(self._answer_items([item])[0], time.perf_counter() - start))
            except Exception as exc:  # not swallowed: the caller reads it from the future
                done.set_exception(exc)
            return done

        def timed(f: Future[Answer]) -> None:
            error = f.exception()
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(_with_latency(f.result(), time.perf_counter() - start))

        self._batcher.submit(item).add_done_callback(timed)
        return done

    def ask_many(
        self, questions: Sequence[str], namespace: str = "default", *, scopes: Sequence[Scope] | None = None
    ) -> list[Answer]:
        """Answer questions, batching the model calls; each answer carries its action, confidence and citations.

        On a shared agent the questions form one batch of their own (the guards are held as for any ask).

        Args:
            questions: the questions, each non-empty and at most :data:`MAX_QUESTION_CHARS` characters.
            namespace: whose memory is searched, with the shared namespaces (:meth:`scopes`).
            scopes: the memory scopes to search instead (e.g. what an API key's grants allow); the
                namespace is then ignored.

        Raises:
            InvalidInputError: an empty or oversized question (nothing is answered).
        """
        start = time.perf_counter()
        searched = tuple(self.scopes(namespace) if scopes is None else scopes)
        answers = self._answer_items([(check_question(q), searched) for q in questions])
        per = (time.perf_counter() - start) / max(1, len(answers))
        return [_with_latency(a, per) for a in answers]

    def share(
        self, guards: AskGuards, *, max_batch: int = 16, max_wait_s: float = 0.005, expect_wait_s: float = 0.0
    ) -> None:
        """Let many threads ask at once: asks hold ``guards``, and concurrent ones form micro-batches.

        A batch takes the oldest waiting question and whatever others arrive within ``max_wait_s`` of it (at
        most ``max_batch``): one embedding call, one batched ``generate`` and one batched ``score``
        call answer them all, each question searching its own scopes. Sharing again replaces the batch
        settings and guards (questions already queued are answered first). ``expect_wait_s`` > 0 lets a
        batch wait that long for the callers of the last batch to come back (:mod:`agent._batcher`).

        Raises:
            ValueError: ``max_batch`` < 1, or ``max_wait_s`` or ``expect_wait_s`` < 0.
        """
        batcher: AskBatcher[AskItem, Answer] = AskBatcher(
            self._answer_items, max_batch=max_batch, max_wait_s=max_wait_s, expect_wait_s=expect_wait_s
        )
        old, self._batcher, self._guards = self._batcher, batcher, guards
        if old is not None:
            old.close()

    @property
    def ask_guards(self) -> AskGuards:
        """What asks hold (:meth:`share`); nothing on an agent that is not shared."""
        return self._guards

    def stop_sharing(self) -> None:
        """Answer the questions already queued, then refuse new asks (:class:`ServiceClosedError`)."""
        if self._batcher is not None:
            self._batcher.close()

    def _answer_items(self, items: Sequence[AskItem]) -> list[Answer]:
        """The ask path: read (concept desk, memory, KG) under ``reading``, the model under ``answering``,
        then the policy (no guard held)."""
        if self.embedder is not None and items:
            with self._guards.reading():  # the names linking will look up (no model)
                texts = self.collector.warm_texts([q for q, _ in items], [list(s) for _, s in items])
            # the questions and the texts their linking embeds, in one call made without the read lock
            # held: the memo then serves linking, every scope and the guard
            self.embedder.embed(texts)
        plan = None
        with self._guards.reading():
            direct = self.concept_answers([q for q, _ in items])  # concept questions: from the KG's concepts
            rest = [item for i, item in enumerate(items) if i not in direct]
            if rest:
                self.wm.sync_entities()  # names other processes told on this home
                plan = self.collector.plan([q for q, _ in rest], [list(s) for _, s in rest])
        with self._guards.answering():
            # routed: only the signals that can still change the policy's decision (see SignalCollector.run)
            signals = self.collector.run(plan, routing=self.thresholds) if plan is not None else []
        decided = iter([self.decide(s) for s in signals])
        return [direct[i] if i in direct else next(decided) for i in range(len(items))]

    def concept_answers(self, questions: Sequence[str]) -> dict[int, Answer]:
        """Answers of the concept desk, by question index (none without a desk)."""
        if self.concepts is None:
            return {}
        found = {i: self.concepts.answer(check_question(q)) for i, q in enumerate(questions)}
        # "I don't know" from the graph (no class of the entity) leaves the question to the ordinary routing
        return {i: a.to_answer() for i, a in found.items() if a is not None and a.answer is not None}

    def decide(self, s: Signals) -> Answer:
        """The policy's answer for measured signals (a refusal first, when the guard flags the question)."""
        if self.guard is not None:
            p = self.guard.unsafe_probability([s.question])[0]
            if p >= 0.5:
                reason = f"refused: a harmful request (safety guard p={p:.2f})"
                return Answer(
                    text=REFUSAL,
                    action="refuse",
                    confidence=round(p, 4),
                    reason=reason,
                    model_calls=s.model_calls,
                    signals=s,
                )
        d = decide(s, self.thresholds)
        return Answer(
            text=d.text,
            action=d.action,
            confidence=d.confidence,
            citations=d.citations,
            reason=d.reason,
            model_calls=s.model_calls,
            signals=s,
        )

    # -- tell / rollback / history (OneEdit's pipeline, agent.tell) -----------------------------------

    @property
    def pipeline(self) -> TellPipeline:
        if self._tell is None:
            raise InvalidInputError("this agent was opened read-only (no tell pipeline)")
        return self._tell

    @property
    def edits_weights(self) -> bool:
        """Whether a tell or rollback may change the model's weights (``[tell] parametric`` is on)."""
        return self._tell is not None and bool(getattr(self._tell, "edits_weights", False))

    def tell(self, statement: str, user: str = "user", namespace: str = "default") -> TellResult:
        """Interpret ``statement`` and, if it is an accepted edit, write it to KG, memory (and weights).

        With a concept desk, a concept definition ("A <concept> is a ...") goes to it instead (see
        :meth:`_tell_concept`).
        """
        if self.concepts is not None and self.concepts.parse(statement) is not None:
            return self._tell_concept(self.concepts, statement, user)
        self.wm.sync_entities()
        visible = list(dict.fromkeys([namespace, *self.shared]))  # judged within what a question there sees
        return self.pipeline.tell(statement, user=user, namespace=namespace, visible=visible)

    def _tell_concept(self, desk: ConceptDesk, statement: str, user: str) -> TellResult:
        """A definition told to the concept desk, returned as a :class:`~agent.tell.TellResult`.

        With a tell pipeline, an applied definition is also recorded in its edit log (one edit: the
        definition's assertions and memory item under the desk's edit id), so it is listed, shown in
        history and rolled back — with the pipeline's permission checks — like any told fact. If the log
        write fails, the definition is undone before the error propagates.
        """
        from datetime import UTC, datetime

        from kg import WORLD_NAMESPACE
        from tools.errors import FactagentError

        told = desk.tell(statement, user)
        if told.status == "applied" and told.edit_id is not None and self._tell is not None:
            try:
                self._tell.log.add_edit(
                    edit_id=told.edit_id,
                    user=user,
                    at=datetime.now(UTC),
                    namespace=desk.namespace or WORLD_NAMESPACE,
                    text=statement.strip(),
                    triples=told.triples,
                    superseded=told.superseded,
                )
            except FactagentError:
                desk.rollback(told.edit_id)
                raise
        return told.to_tell_result()

    def may_undo_definition(self, edit_id: str, user: str, author: str) -> bool:
        """Whether ``user`` may undo the concept definition ``edit_id`` told by ``author`` although its namespace
        is not theirs to write (:meth:`ConceptDesk.may_undo`); ``False`` without a concept desk."""
        return self.concepts is not None and self.concepts.may_undo(edit_id, user, author)

    def rollback(self, edit_id: str, user: str = "user") -> RollbackResult:
        """Undo one edit in KG, memory and weights together.

        A concept definition logged by the tell pipeline is undone by it (its permission checks apply); one
        told to a concept desk without a pipeline, by the desk.
        """
        logged = self._tell is not None and self._tell.log.exists(edit_id)
        if self.concepts is not None and self.concepts.owns(edit_id) and not logged:
            return self.concepts.rollback(edit_id)
        return self.pipeline.rollback(edit_id, user=user)

    def history(self, subject: str, namespaces: Sequence[str] | None = None) -> list[EditRecord]:
        """Edits touching ``subject``, newest first (only those in ``namespaces``, when given)."""
        return self.pipeline.history(subject, namespaces)

    @classmethod
    def open(cls, home: Home, lm: LanguageModel | None = None, *, with_tell: bool = True) -> Agent:
        """The default stack under ``home``: its working memory, model, calibrated thresholds, tell pipeline.

        Built by the composition root, :func:`agent.wiring.open_agent` (its arguments and errors).
        """
        from agent.wiring import open_agent

        return open_agent(home, lm, with_tell=with_tell)

    def close(self) -> None:
        self.stop_sharing()
        self.wm.close()


def _with_latency(answer: Answer, seconds: float) -> Answer:
    return replace(answer, latency_s=seconds)
