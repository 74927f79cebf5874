"""Setups: what answers the audit's questions — a model alone, the model with retrieved evidence, the agent,
or any model behind an OpenAI-compatible endpoint. Each answers a batch at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from eval.audit._errors import SetupUnavailableError
from eval.audit._types import AuditQuestion, SetupAnswer

if TYPE_CHECKING:
    from agent.retrieval import Evidence
    from memory import Scope
    from tools.lm import LanguageModel

__all__ = [
    "AgentSetup",
    "Asker",
    "EndpointSetup",
    "RagSetup",
    "Retriever",
    "Setup",
    "StandaloneSetup",
    "parse_endpoint_spec",
]

logger = logging.getLogger(__name__)


@runtime_checkable
class Setup(Protocol):
    """Answers questions: ``answer(qs)[i]`` belongs to ``qs[i]``; the same input gives the same answers."""

    name: str

    def answer(self, questions: Sequence[AuditQuestion]) -> list[SetupAnswer]: ...


class Retriever(Protocol):
    """What :class:`RagSetup` needs from :class:`agent.retrieval.HybridRetriever`."""

    def retrieve(
        self,
        question: str,
        *,
        scope: Scope | None = None,
        as_of: Any = None,
        k: int | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> list[Evidence]: ...


class Asker(Protocol):
    """The agent's question API (issue 5): ``ask`` returns an answer with ``text``, ``action``
    (``"abstain"`` when it declines), ``confidence`` and ``citations``."""

    def ask(self, question: str, namespace: Any = None) -> Any: ...


def _shared_latency(started: float, n: int) -> float:
    return (time.perf_counter() - started) / max(n, 1)


class StandaloneSetup:
    """The model alone (closed book): each question in the model's own prompt format, greedy decoding.

    Confidence is the probability of the first generated token.
    """

    def __init__(self, lm: LanguageModel, *, name: str = "standalone", max_new_tokens: int = 24) -> None:
        self._lm = lm
        self.name = name
        self.max_new_tokens = max_new_tokens

    def prompt(self, question: AuditQuestion) -> str:
        """The closed-book prompt (a cloze prompt is completed as it is)."""
        if question.form == "cloze":
            return question.text
        return self._lm.prompt_format.question(question.text)

    def answer(self, questions: Sequence[AuditQuestion]) -> list[SetupAnswer]:
        """See :class:`Setup`."""
        started = time.perf_counter()
        gens = self._lm.generate([self.prompt(q) for q in questions], max_new_tokens=self.max_new_tokens)
        latency = _shared_latency(started, len(questions))
        return [SetupAnswer(g.text, confidence=g.first_token_prob, latency_s=latency) for g in gens]


class EndpointSetup(StandaloneSetup):
    """Any chat model behind an OpenAI-compatible endpoint, closed book (``openai:URL#MODEL`` on the CLI)."""

    def __init__(self, lm: LanguageModel, *, name: str | None = None, max_new_tokens: int = 24) -> None:
        super().__init__(lm, name=name or f"openai:{lm.name}", max_new_tokens=max_new_tokens)


def parse_endpoint_spec(spec: str) -> tuple[str, str]:
    """``openai:http://host:port/v1#model`` -> ``(base_url, model)``.

    Raises:
        SetupUnavailableError: not of that form.
    """
    body = spec.removeprefix("openai:")
    url, _, model = body.partition("#")
    if not spec.startswith("openai:") or not url.startswith(("http://", "https://")) or not model:
        raise SetupUnavailableError(
            f"setup {spec!r}: expected openai:<base url>#<model>, e.g. openai:http://127.0.0.1:8000/v1#llama3"
        )
    return url, model


_NOT_ATTEMPTED = ("abstain", "refuse")  # a refusal of a harmful request is an abstention to the grader


def _is_abstain(action: Any) -> bool:
    """``"abstain"`` or ``"refuse"``, or an enum member whose value or name is one of those."""
    value = getattr(action, "value", action)
    return str(value).lower() in _NOT_ATTEMPTED or str(getattr(action, "name", "")).lower() in _NOT_ATTEMPTED


def _citation_id(citation: Any) -> str:
    """A memory item or KG assertion id (from a :class:`Citation`, or an :class:`Evidence` holding one)."""
    citation = getattr(citation, "citation", citation)
    for attr in ("item_id", "assertion_id", "id"):
        value = getattr(citation, attr, None)
        if value:
            return str(value)
    return str(citation)


class RagSetup:
    """The same model with the top-``k`` pieces of evidence from the working memory in its prompt.

    Evidence comes from the hybrid retriever (exact KG facts and vector-memory passages, best first) and is
    placed in the model's ``context_template``; with no evidence the question is asked closed book.

    Args:
        lm: the answering model.
        retriever: a :class:`agent.retrieval.HybridRetriever` (or anything with its ``retrieve``).
        k: pieces of evidence per question.
        scope: the memory namespace searched (default: every namespace).
        namespaces: the KG namespaces read, in order of precedence (default: the whole graph).
        prefetch: called with the batch's question texts first (e.g. a caching embedder's ``embed``, so
            that the retriever's per-question searches find their vectors computed in one batch).
    """

    def __init__(
        self,
        lm: LanguageModel,
        retriever: Retriever,
        *,
        k: int = 3,
        scope: Scope | None = None,
        name: str = "rag",
        max_new_tokens: int = 24,
        prefetch: Callable[[list[str]], object] | None = None,
        namespaces: Sequence[str] | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self._lm = lm
        self._retriever = retriever
        self.k = k
        self.scope = scope
        self.name = name
        self.max_new_tokens = max_new_tokens
        self._prefetch = prefetch
        self.namespaces = None if namespaces is None else tuple(namespaces)

    def prompt(self, question: AuditQuestion, evidence: Sequence[Evidence]) -> str:
        """The prompt with the evidence sentences as context."""
        fmt = self._lm.prompt_format
        texts = [e.text for e in evidence]
        if question.form == "cloze":
            return fmt.cloze_with_context(texts, question.text) if texts else question.text
        return fmt.with_context(texts, question.text) if texts else fmt.question(question.text)

    def answer(self, questions: Sequence[AuditQuestion]) -> list[SetupAnswer]:
        """See :class:`Setup`."""
        started = time.perf_counter()
        if self._prefetch is not None and questions:
            self._prefetch([q.text for q in questions])
        evidence = [
            self._retriever.retrieve(q.text, scope=self.scope, k=self.k, namespaces=self.namespaces) for q in questions
        ]
        prompts = [self.prompt(q, ev) for q, ev in zip(questions, evidence, strict=True)]
        gens = self._lm.generate(prompts, max_new_tokens=self.max_new_tokens)
        latency = _shared_latency(started, len(questions))
        return [
            SetupAnswer(
                g.text,
                confidence=g.first_token_prob,
                citations=tuple(_citation_id(e.citation) for e in ev),
                latency_s=latency,
            )
            for g, ev in zip(gens, evidence, strict=True)
        ]


class AgentSetup:
    """The agent: each question through ``asker.ask_many`` (or ``ask``); the ``abstain`` action is an abstention.

    Args:
        asker: :class:`agent.Agent` or any object with its ``ask`` (see :class:`Asker`); ``ask_many`` is
            used when present (the agent batches its model calls).
        namespace: passed to ``ask`` (the memory namespace the agent reads besides its shared ones).
    """

    def __init__(self, asker: Asker, *, namespace: Any = "default", name: str = "agent") -> None:
        self._asker = asker
        self.namespace = namespace
        self.name = name

    def answer(self, questions: Sequence[AuditQuestion]) -> list[SetupAnswer]:
        """See :class:`Setup`."""
        started = time.perf_counter()
        many = getattr(self._asker, "ask_many", None)
        if many is not None:
            replies = list(many([q.text for q in questions], namespace=self.namespace))
        else:
            replies = [self._asker.ask(q.text, namespace=self.namespace) for q in questions]
        shared = _shared_latency(started, len(questions))
        return [_from_reply(reply, shared) for reply in replies]


def _from_reply(reply: Any, measured: float) -> SetupAnswer:
    latency = getattr(reply, "latency_s", getattr(reply, "latency", None))
    confidence = getattr(reply, "confidence", None)
    return SetupAnswer(
        text=str(getattr(reply, "text", "") or ""),
        confidence=None if confidence is None else float(confidence),
        abstained=_is_abstain(getattr(reply, "action", None)),
        citations=tuple(dict.fromkeys(_citation_id(c) for c in getattr(reply, "citations", ()) or ())),
        latency_s=float(latency) if isinstance(latency, int | float) and latency > 0 else measured,
    )
