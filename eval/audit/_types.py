"""Value types of the audit: questions, setup answers, grades and the graded record of one answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = ["CATEGORIES", "AuditQuestion", "Grade", "Record", "SetupAnswer"]

# The world's question kinds as report categories (ARCHITECTURE.md: known, unknown-in-memory, edited,
# unanswerable); other datasets bring their own category names.
CATEGORIES = {"known": "known", "unknown": "unknown", "edit": "edited", "unanswerable": "unanswerable"}
UNANSWERABLE = "unanswerable"


class Grade(StrEnum):
    """SimpleQA's three grades of an answer."""

    CORRECT = "CORRECT"
    INCORRECT = "INCORRECT"
    NOT_ATTEMPTED = "NOT_ATTEMPTED"


@dataclass(frozen=True)
class AuditQuestion:
    """One question of an audit dataset.

    Attributes:
        id: unique within the dataset (resuming keys on it).
        text: the question, or a cloze prompt when ``form == "cloze"`` (completed, not answered).
        answers: gold answers; empty exactly for unanswerable questions (the right response is to abstain).
        aliases: other accepted names of the answer.
        category: the breakdown the report uses (``known``, ``unknown``, ``edited``, ``unanswerable``, ...).
        incorrect_answers: known wrong answers (TruthfulQA), for graders and readers.
        subject, relation: the fact asked about, when known (world questions).
    """

    id: str
    text: str
    answers: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    category: str = "uncategorized"
    form: Literal["question", "cloze"] = "question"
    incorrect_answers: tuple[str, ...] = ()
    subject: str | None = None
    relation: str | None = None

    @property
    def answerable(self) -> bool:
        """True when there is a gold answer."""
        return bool(self.answers)

    @property
    def accepted(self) -> tuple[str, ...]:
        """Gold answers and aliases."""
        return self.answers + self.aliases


@dataclass(frozen=True)
class SetupAnswer:
    """What a setup said for one question.

    Attributes:
        text: the answer text ("" when the setup abstained without text).
        confidence: in [0, 1] (first-token probability for local models), ``None`` when unknown.
        abstained: the setup itself chose not to answer (the agent's abstain action).
        citations: ids of the evidence the answer used (memory item or KG assertion ids).
        latency_s: seconds this answer took (a batch's time shared evenly among its questions).
    """

    text: str
    confidence: float | None = None
    abstained: bool = False
    citations: tuple[str, ...] = ()
    latency_s: float = 0.0


@dataclass(frozen=True)
class Record:
    """One graded answer: a line of ``answers.jsonl``."""

    setup: str
    question_id: str
    category: str
    answerable: bool
    answer: SetupAnswer
    grade: Grade
    claims: int = 0  # atomic claims in a long answer (0: not a long answer)
    supported_claims: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the grade as its name)."""
        data = asdict(self)
        data["grade"] = self.grade.value
        data["answer"]["citations"] = list(self.answer.citations)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """The inverse of :meth:`to_json`; raises ``KeyError`` / ``TypeError`` / ``ValueError`` on bad input."""
        answer = dict(data["answer"])
        answer["citations"] = tuple(answer.get("citations", ()))
        return cls(
            setup=str(data["setup"]),
            question_id=str(data["question_id"]),
            category=str(data["category"]),
            answerable=bool(data["answerable"]),
            answer=SetupAnswer(**answer),
            grade=Grade(data["grade"]),
            claims=int(data.get("claims", 0)),
            supported_claims=int(data.get("supported_claims", 0)),
        )
