"""Graders: each answer becomes CORRECT, INCORRECT or NOT_ATTEMPTED (SimpleQA's rubric).

Every grader shares two rules before its own comparison (:func:`pre_grade`):

1. an abstention is NOT_ATTEMPTED — the setup's own ``abstained`` flag, an empty answer, or a refusal phrase
   ("I don't know", "unknown", "no comment", "I cannot answer", "不知道", "无法回答", ...: :func:`is_abstention`);
2. an attempted answer to an unanswerable question (no gold answer) is INCORRECT: the right response was to
   abstain, so answering is a hallucination.

Then :class:`ExactGrader` (the deterministic default) compares normalised text with the gold answers and
aliases (Chinese and pinyin answers character by character, traditional folded to simplified, tone numbers
equal to tone marks: ``eval._zh_normalize``); :class:`EmbeddingGrader` also accepts an answer whose
sentence embedding is close to one of them;
:class:`LLMJudgeGrader` asks a chat model behind an OpenAI-compatible endpoint to apply the rubric.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from eval._normalize import exact_match, normalize_answer
from eval._zh_normalize import has_cjk
from eval.audit._errors import JudgeUnavailableError
from eval.audit._types import AuditQuestion, Grade, SetupAnswer
from tools.errors import BackendError

if TYPE_CHECKING:
    from memory import Embedder
    from tools.lm import LanguageModel

__all__ = ["EmbeddingGrader", "ExactGrader", "Grader", "LLMJudgeGrader", "is_abstention", "pre_grade"]

logger = logging.getLogger(__name__)

# Matched on normalised text (lower case, no punctuation: "don't" -> "dont").
_ABSTAIN = re.compile(
    r"^(?:unknown|not known|no idea|no comment|none known|n a|na|pass|abstain\w*)$"
    r"|\bi (?:dont|do not|really dont) know\b|\bi am not sure\b|\bim not sure\b|\bnot sure\b"
    r"|\bi (?:cannot|cant|can not|am unable to|am not able to) (?:answer|say|tell|help|determine|find)\b"
    r"|\bi have no comment\b|\bno (?:reliable )?information\b|\bnot enough (?:information|context)\b"
    r"|\bunable to (?:answer|determine)\b|\bi dont have (?:that |enough )?information\b"
    r"|\bthere is no (?:answer|information)\b|\bunknown to me\b"
)
# Chinese refusals, matched on normalize_zh text (simplified, no punctuation or spaces).
_ABSTAIN_ZH = re.compile(
    r"^(?:未知|不详|无可奉告|跳过)$|不知道|不清楚|不确定|无法(?:回答|确定|判断)|没有(?:相关)?(?:信息|答案)"
)


def is_abstention(text: str) -> bool:
    """True when ``text`` declines to answer: empty, or a refusal / "I don't know" phrase.

    Example:
        >>> is_abstention("I don't know."), is_abstention("Unknown"), is_abstention("Paris")
        (True, True, False)
        >>> is_abstention("我不知道。")
        True
    """
    norm = normalize_answer(text)
    if has_cjk(text):
        return not norm or bool(_ABSTAIN_ZH.search(norm))
    return not norm or bool(_ABSTAIN.search(norm))


def pre_grade(question: AuditQuestion, answer: SetupAnswer) -> Grade | None:
    """The grade every grader gives before comparing answers, or ``None`` when a comparison is needed."""
    if answer.abstained or is_abstention(answer.text):
        return Grade.NOT_ATTEMPTED
    if not question.answerable:
        return Grade.INCORRECT
    return None


@runtime_checkable
class Grader(Protocol):
    """Grades a batch of answers; ``grade(qs, answers)[i]`` belongs to ``qs[i]``. Deterministic for a fixed input.

    Raises (``grade``):
        ValueError: the two sequences differ in length.
        JudgeUnavailableError: a remote judge failed (LLM graders only).
    """

    name: str

    def grade(self, questions: Sequence[AuditQuestion], answers: Sequence[SetupAnswer]) -> list[Grade]: ...


def _check_lengths(questions: Sequence[AuditQuestion], answers: Sequence[SetupAnswer]) -> None:
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")


class ExactGrader:
    """CORRECT when the normalised answer equals a normalised gold answer or alias (SQuAD normalisation)."""

    name = "exact"

    def grade(self, questions: Sequence[AuditQuestion], answers: Sequence[SetupAnswer]) -> list[Grade]:
        """See :class:`Grader`."""
        _check_lengths(questions, answers)
        out = []
        for q, a in zip(questions, answers, strict=True):
            pre = pre_grade(q, a)
            out.append(pre or (Grade.CORRECT if exact_match(a.text, q.accepted) else Grade.INCORRECT))
        return out


class EmbeddingGrader:
    """Exact match, else CORRECT when the cosine similarity to a gold answer or alias reaches ``threshold``.

    Args:
        embedder: a sentence embedder with L2-normalised rows (``memory.Embedder``).
        threshold: cosine similarity from which two answers count as the same (MiniLM, measured: a name
            without its diacritics 1.0, "USA" / "United States" 0.89, "Lisa Su" / "Lisa T. Su" 0.94, but
            "Sweden" / "Norway" 0.80 and "Bill Gates" / "Steve Jobs" 0.62).
    """

    name = "embedding"

    def __init__(self, embedder: Embedder, threshold: float = 0.85) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self._embedder = embedder
        self.threshold = threshold

    def grade(self, questions: Sequence[AuditQuestion], answers: Sequence[SetupAnswer]) -> list[Grade]:
        """See :class:`Grader`. One embedder call per batch."""
        _check_lengths(questions, answers)
        out: list[Grade | None] = []
        texts: list[str] = []
        todo: list[tuple[int, int, int]] = []  # (position, first text, number of accepted answers)
        for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
            pre = pre_grade(q, a)
            if pre is None and exact_match(a.text, q.accepted):
                pre = Grade.CORRECT
            out.append(pre)
            if pre is None:
                todo.append((i, len(texts), len(q.accepted)))
                texts.extend([a.text, *q.accepted])
        if todo:
            vectors = self._embedder.embed(texts)
            for i, start, n in todo:
                sims = vectors[start + 1 : start + 1 + n] @ vectors[start]
                out[i] = Grade.CORRECT if float(sims.max()) >= self.threshold else Grade.INCORRECT
        return [g if g is not None else Grade.INCORRECT for g in out]


_JUDGE_PROMPT = """You grade answers to factual questions. Read the question, the gold target and the \
predicted answer, then reply with exactly one letter:
A = CORRECT: the prediction states the gold target (or an equivalent name, spelling or alias) and says \
nothing that contradicts it.
B = INCORRECT: the prediction states a different answer, or contradicts the gold target, even when hedged.
C = NOT_ATTEMPTED: the prediction gives no answer (a refusal, "I don't know", a request for more \
information) and does not contradict the gold target.
Ignore capitalisation, punctuation and grammar; a name that is only missing a middle name or title is correct.

Question: {question}
Gold target: {target}
Predicted answer: {predicted}
Grade (A, B or C):"""
_LETTERS = {"A": Grade.CORRECT, "B": Grade.INCORRECT, "C": Grade.NOT_ATTEMPTED}
_WORDS = re.compile(r"\b(NOT[_ ]ATTEMPTED|INCORRECT|CORRECT)\b", re.IGNORECASE)


def parse_judgement(text: str) -> Grade | None:
    """The grade in a judge's reply ("A", "B) incorrect", "NOT_ATTEMPTED", ...), ``None`` when there is none."""
    stripped = text.strip()
    head = stripped[:1].upper()
    if head in _LETTERS and (len(stripped) == 1 or not stripped[1].isalpha()):
        return _LETTERS[head]
    found = _WORDS.search(stripped)
    if found:
        return Grade(found.group(1).upper().replace(" ", "_"))
    return None


class LLMJudgeGrader:
    """A chat model grades each attempted answer with the CORRECT / INCORRECT / NOT_ATTEMPTED rubric.

    Abstentions and answers to unanswerable questions are graded by :func:`pre_grade` without a request.
    A reply without a grade counts as INCORRECT (logged).

    Args:
        judge: a language model, normally :class:`tools.lm.OpenAIChatModel` at ``temperature=0``.
        endpoint: where the judge lives, for error messages.
    """

    name = "llm"

    def __init__(self, judge: LanguageModel, endpoint: str = "") -> None:
        self._judge = judge
        self.endpoint = endpoint or getattr(judge, "name", "judge")

    def grade(self, questions: Sequence[AuditQuestion], answers: Sequence[SetupAnswer]) -> list[Grade]:
        """See :class:`Grader`.

        Raises:
            JudgeUnavailableError: the endpoint is unreachable, timed out or failed (the cause is chained).
        """
        _check_lengths(questions, answers)
        out: list[Grade | None] = [pre_grade(q, a) for q, a in zip(questions, answers, strict=True)]
        todo = [i for i, g in enumerate(out) if g is None]
        prompts = [
            _JUDGE_PROMPT.format(
                question=questions[i].text, target=" / ".join(questions[i].accepted), predicted=answers[i].text
            )
            for i in todo
        ]
        try:
            replies = self._judge.generate(prompts, max_new_tokens=8) if prompts else []
        except BackendError as exc:
            raise JudgeUnavailableError(f"the LLM judge at {self.endpoint} failed: {exc}") from exc
        for i, reply in zip(todo, replies, strict=True):
            grade = parse_judgement(reply.text)
            if grade is None:
                logger.warning("judge reply without a grade for question %s: %r", questions[i].id, reply.text)
                grade = Grade.INCORRECT
            out[i] = grade
        return [g if g is not None else Grade.INCORRECT for g in out]
