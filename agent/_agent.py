"""The agent: ask (route to KG, retrieval, the model's own knowledge, or abstain), tell, rollback, history.

``Agent.open(home)`` builds the default stack from a home directory; tests and other callers can pass the
parts to the constructor instead. The namespace of a question is the memory scope searched
(``Scope(agent_id=namespace)``) together with the shared namespaces (the reference world's documents live in
``"world"``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from agent._answer import Answer, Signals
from agent._policy import PolicyThresholds, decide
from agent._signals import SignalCollector
from agent._work import WorkCounts
from memory import MemoEmbedder, Scope
from tools.errors import InvalidInputError

if TYPE_CHECKING:
    from agent._concepts import ConceptDesk
    from agent.config import Home
    from agent.tell import EditRecord, TellPipeline
    from agent.wiring import WorkingMemory
    from tools.lm import LanguageModel

__all__ = ["MAX_QUESTION_CHARS", "Agent"]

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
            warm=embedder.embed if embedder is not None else None,
        )
        self._tell = tell
        self.guard = guard
        self.concepts = concepts

    def scopes(self, namespace: str) -> list[Scope]:
        """The memory scopes a question in ``namespace`` searches."""
        names = dict.fromkeys([namespace, *self.shared])
        return [Scope(agent_id=n) for n in names]

    def work(self) -> WorkCounts:
        """What answering has cost so far: asks, model batches and prompts, embedder batches and texts."""
        e = self.embedder.counts() if self.embedder is not None else None
        return self.collector.work.counts(e.calls if e else 0, e.texts if e else 0)

    def signals(
        self, questions: Sequence[str], namespace: str = "default", *, scopes: Sequence[Scope] | None = None
    ) -> list[Signals]:
        """Measured signals for each question (no decision); ``scopes`` replaces the namespace's scopes."""
        checked = [check_question(q) for q in questions]
        self.wm.sync_entities()  # names other processes told on this home
        return self.collector.collect(checked, self.scopes(namespace) if scopes is None else list(scopes))

    def ask(self, question: str, namespace: str = "default", *, scopes: Sequence[Scope] | None = None) -> Answer:
        """Answer one question (see :meth:`ask_many`)."""
        return self.ask_many([question], namespace, scopes=scopes)[0]

    def ask_many(
        self, questions: Sequence[str], namespace: str = "default", *, scopes: Sequence[Scope] | None = None
    ) -> list[Answer]:
        """Answer questions, batching the model calls; each answer carries its action, confidence and citations.

        Args:
            questions: the questions, each non-empty and at most :data:`MAX_QUESTION_CHARS` characters.
            namespace: whose memory is searched, with the shared namespaces (:meth:`scopes`).
            scopes: the memory scopes to search instead (e.g. what an API key's grants allow); the
                namespace is then ignored.

        Raises:
            InvalidInputError: an empty or oversized question (nothing is answered).
        """
        start = time.perf_counter()
        direct = self.concept_answers(questions)
        rest = [q for i, q in enumerate(questions) if i not in direct]
        signals = self.signals(rest, namespace, scopes=scopes) if rest else []
        decided = iter([self.decide(s) for s in signals])
        answers = [direct[i] if i in direct else next(decided) for i in range(len(questions))]
        per = (time.perf_counter() - start) / max(1, len(answers))
        return [_with_latency(a, per) for a in answers]

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

    # tell / rollback stay ``Any``: a concept desk answers them with ConceptTell / int, and the callers (CLI,
    # server, langchain tools) read TellResult / RollbackResult fields; typing the union needs those callers split.
    def tell(self, statement: str, user: str = "user", namespace: str = "default") -> Any:
        """Interpret ``statement`` and, if it is an accepted edit, write it to KG, memory (and weights).

        With a concept desk, a concept definition ("A <concept> is a ...") goes to it instead (see
        :meth:`_tell_concept`).
        """
        if self.concepts is not None and self.concepts.parse(statement) is not None:
            return self._tell_concept(self.concepts, statement, user)
        self.wm.sync_entities()
        visible = list(dict.fromkeys([namespace, *self.shared]))  # judged within what a question there sees
        return self.pipeline.tell(statement, user=user, namespace=namespace, visible=visible)

    def _tell_concept(self, desk: ConceptDesk, statement: str, user: str) -> Any:
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

    def rollback(self, edit_id: str, user: str = "user") -> Any:
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
        """The default stack under ``home``: its working memory, model, calibrated thresholds, tell pipeline."""
        from agent.wiring import (
            load_embedder,
            load_language_model,
            load_request_guard,
            open_concept_desk,
            open_working_memory,
            policy_thresholds,
        )

        embedder = load_embedder(home)
        wm = open_working_memory(home, embedder)
        model = lm or load_language_model(home)
        tell = None
        if with_tell:
            from agent.tell import TellPipeline
            from tools.lm import LocalLanguageModel

            local = model if isinstance(model, LocalLanguageModel) else None  # parametric edits need weights
            tell = TellPipeline.open(wm, home.settings, lm=local)
        guard = load_request_guard(embedder)
        memo = embedder if isinstance(embedder, MemoEmbedder) else None
        concepts = open_concept_desk(wm, home.settings)
        return cls(
            wm, model, thresholds=policy_thresholds(home), tell=tell, guard=guard, concepts=concepts, embedder=memo
        )

    def close(self) -> None:
        self.wm.close()


def _with_latency(answer: Answer, seconds: float) -> Answer:
    from dataclasses import replace

    return replace(answer, latency_s=seconds)
