"""What ``Agent.ask`` returns, and the measured signals behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agent.retrieval import Evidence, Superseded

__all__ = ["Action", "Answer", "ModelView", "Signals"]

Action = Literal["kg", "retrieval", "parametric", "abstain", "refuse"]


@dataclass(frozen=True)
class ModelView:
    """The local model's own answer to a prompt, with its first-token confidence."""

    prompt: str
    text: str
    prob: float  # probability of the first answer token
    margin: float  # its lead over the runner-up token


@dataclass(frozen=True)
class Signals:
    """Everything the policy looks at for one question (shown by the chat's ``/why``).

    Attributes:
        subject, relation: what the question was linked to (``None`` when nothing was).
        link_score: entity-link score times relation-link score, in [0, 1].
        kg: exact, currently valid KG facts for ``(subject, relation)`` (newest last).
        memory: vector-memory passages, best first (cosine scores).
        rag: the model's answer with the top passages in its context, if there were any.
        rag_supported: the RAG answer occurs in one of the passages given to the model.
        model: the model's closed-book answer to the question.
        paraphrases: its closed-book answers to other phrasings of the same (subject, relation).
        agreement: fraction of ``paraphrases`` whose answer agrees with ``model`` (``None`` without any).
        prior: the model's answer to the question about a content-free subject (its prior for the relation).
        familiarity: mean log-probability per token the model gives the subject's name after the question's
            words before it (local models only): names it was trained on score near 0, names it never saw
            far below.
        pmi: mean log-probability per token of the model's answer after the question minus after the same
            question about a content-free subject: how much the subject, not the relation, picks the answer.
        unavailable: model signals the backend does not give (``first_token_prob``, ``familiarity``,
            ``pmi``): a served model without logprobs is judged on paraphrase agreement alone.
        model_calls: prompts sent to the model for this question (requests, for a served model).
        told: memory passages a user told as free text (no triple was read from them) that name the subject
            and that the relation linker reads as the question's relation, best first: what the user said
            about exactly this (subject, relation), which the model's own answer must not contradict.
        superseded: facts about the names the question mentions that another object replaced (a user's tell
            after the world's): an answer naming their old object is out of date.
    """

    question: str
    subject: str | None = None
    relation: str | None = None
    link_score: float = 0.0
    kg: tuple[Evidence, ...] = ()
    memory: tuple[Evidence, ...] = ()
    rag: ModelView | None = None
    rag_supported: bool = False
    model: ModelView | None = None
    paraphrases: tuple[ModelView, ...] = ()
    agreement: float | None = None
    prior: ModelView | None = None
    familiarity: float | None = None
    pmi: float | None = None
    unavailable: tuple[str, ...] = ()
    model_calls: int = 0
    told: tuple[Evidence, ...] = ()
    superseded: tuple[Superseded, ...] = ()

    @property
    def memory_top(self) -> float:
        """Best memory score (0 without hits)."""
        return self.memory[0].score if self.memory else 0.0

    @property
    def prior_agrees(self) -> bool:
        """The model gives the same answer about a content-free subject (so it may be guessing)."""
        from agent._signals import answers_agree

        return self.model is not None and self.prior is not None and answers_agree(self.model.text, self.prior.text)

    @property
    def schema_view(self) -> ModelView | None:
        """The model's answer in the schema's own phrasings where it overrules the answer to the user's words.

        At least two paraphrases (the relation's templates: phrasings the model was trained on) were asked,
        all of them answer alike, and the answer to the question's own words differs: then the first
        paraphrase's answer (a cloze template's, when the relation has one), else ``None``. On held-out
        phrasings the model often answers wrong where its training phrasings answer right (issue 17); the
        policy may take this answer when :attr:`schema_confidence` clears its own threshold.
        """
        from agent._signals import answers_agree

        paras = self.paraphrases
        if self.model is None or len(paras) < 2 or not paras[0].text:
            return None
        if not all(answers_agree(paras[0].text, p.text) for p in paras[1:]):
            return None
        return None if answers_agree(paras[0].text, self.model.text) else paras[0]

    @property
    def schema_confidence(self) -> float:
        """The first-token probability of :attr:`schema_view` (0 without one, or without first-token
        probabilities: paraphrases answered as text alone say nothing), discounted as
        :attr:`model_confidence` is when the model says the same about a content-free subject."""
        from agent._signals import answers_agree

        view = self.schema_view
        if view is None or "first_token_prob" in self.unavailable:
            return 0.0
        conf = view.prob
        if self.prior is not None and answers_agree(view.text, self.prior.text):
            conf *= 1.0 - self.prior.prob
        return conf

    @property
    def model_confidence(self) -> float:
        """First-token probability, times paraphrase agreement when measured, discounted by the prior's
        probability when the model says the same about a content-free subject.

        Without first-token probabilities (a backend with no logprobs) the confidence is the paraphrase
        agreement alone, and 0 when there were no paraphrases to agree with.
        """
        if self.model is None:
            return 0.0
        if "first_token_prob" in self.unavailable and self.agreement is None:
            return 0.0
        conf = self.model.prob * (1.0 if self.agreement is None else self.agreement)
        if self.prior_agrees and self.prior is not None:
            conf *= 1.0 - self.prior.prob
        return conf


@dataclass(frozen=True)
class Answer:
    """The agent's reply to a question.

    Attributes:
        text: the answer ("" when abstaining).
        action: where it came from: ``kg``, ``retrieval``, ``parametric`` or ``abstain``; ``refuse`` for a
            harmful request (the agent's safety guard; ``text`` is the refusal with its reason).
        confidence: in [0, 1], comparable within an action (the policy's score for it).
        citations: memory item ids, KG assertion ids and triples, edit ids behind the answer.
        reason: one line on why this action (or why the agent does not know).
        latency_s: wall time of the whole ask.
        model_calls: prompts sent to the model for it (requests, for a served model).
        signals: the measured signals (for ``/why`` and calibration).
    """

    text: str
    action: Action
    confidence: float
    citations: tuple[Evidence, ...] = ()
    reason: str = ""
    latency_s: float = 0.0
    model_calls: int = 0
    signals: Signals | None = field(default=None, repr=False, compare=False)

    @property
    def abstained(self) -> bool:
        """No answer was attempted: ``abstain``, or ``refuse`` (a harmful request), which graders count alike."""
        return self.action in ("abstain", "refuse")

    @property
    def edit_ids(self) -> tuple[str, ...]:
        """Edit ids of the cited evidence (told facts)."""
        return tuple(dict.fromkeys(e.citation.edit_id for e in self.citations if e.citation.edit_id))
