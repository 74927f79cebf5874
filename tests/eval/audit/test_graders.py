"""Graders: the contract every grader passes, abstention detection, and the LLM judge over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from eval.audit import (
    AuditQuestion,
    EmbeddingGrader,
    ExactGrader,
    Grade,
    Grader,
    JudgeUnavailableError,
    LLMJudgeGrader,
    SetupAnswer,
    is_abstention,
)
from eval.audit._graders import parse_judgement
from tests.eval.audit.judge_server import Judge, judge_server
from tools.lm import OpenAIChatModel

AMD = AuditQuestion("q1", "Who is the CEO of AMD?", ("Lisa Su",), aliases=("Lisa T. Su",), category="known")
NOKIA = AuditQuestion("q2", "Who is the CEO of Nokia?", ("Pekka Lundmark",), category="known")
GHOST = AuditQuestion("q3", "Who founded Vrundforgion Stithvrernior?", (), category="unanswerable")

# (question, answer, the grade every grader must give)
CASES = [
    (AMD, SetupAnswer("Lisa Su"), Grade.CORRECT),
    (AMD, SetupAnswer("the lisa su."), Grade.CORRECT),
    (AMD, SetupAnswer("Lisa T. Su"), Grade.CORRECT),  # an alias
    (NOKIA, SetupAnswer("Tim Cook"), Grade.INCORRECT),
    (NOKIA, SetupAnswer("I don't know."), Grade.NOT_ATTEMPTED),
    (NOKIA, SetupAnswer(""), Grade.NOT_ATTEMPTED),
    (NOKIA, SetupAnswer("Pekka Lundmark", abstained=True), Grade.NOT_ATTEMPTED),  # the setup's own flag wins
    (GHOST, SetupAnswer("Lisa Su"), Grade.INCORRECT),  # answering the unanswerable is a hallucination
    (GHOST, SetupAnswer("Unknown"), Grade.NOT_ATTEMPTED),
]


@pytest.fixture(scope="module")
def judge() -> Iterator[Judge]:
    with judge_server() as served:
        yield served


@pytest.fixture(params=["exact", "embedding", "llm"])
def grader(request: pytest.FixtureRequest, judge: Judge) -> Iterator[Grader]:
    if request.param == "exact":
        yield ExactGrader()
    elif request.param == "embedding":
        yield EmbeddingGrader(request.getfixturevalue("minilm"))
    else:
        with OpenAIChatModel(judge.url, "judge", max_retries=0) as model:
            yield LLMJudgeGrader(model)


def test_contract_grades(grader: Grader) -> None:
    questions = [c[0] for c in CASES]
    answers = [c[1] for c in CASES]
    assert isinstance(grader, Grader)
    assert grader.grade(questions, answers) == [c[2] for c in CASES]
    assert grader.grade(questions, answers) == grader.grade(questions, answers)  # deterministic
    assert grader.grade([], []) == []


def test_contract_length_mismatch(grader: Grader) -> None:
    with pytest.raises(ValueError, match="2 questions but 1 answers"):
        grader.grade([AMD, NOKIA], [SetupAnswer("x")])


def test_embedding_grader_accepts_close_spellings(minilm: Any) -> None:
    grader = EmbeddingGrader(minilm)
    owner = AuditQuestion("q", "Who owns AC Sparta Prague?", ("Daniel Křetínský",))
    country = AuditQuestion("c", "Where was the treaty signed?", ("United States",))
    answers = [SetupAnswer("Daniel Kretinsky"), SetupAnswer("USA"), SetupAnswer("Norway")]
    assert grader.grade([owner, country, country], answers) == [Grade.CORRECT, Grade.CORRECT, Grade.INCORRECT]


def test_judge_sends_only_what_needs_judging(judge: Judge) -> None:
    requests = judge.requests
    before = len(requests)
    with OpenAIChatModel(judge.url, "judge", max_retries=0) as model:
        grades = LLMJudgeGrader(model).grade(
            [AMD, NOKIA, GHOST], [SetupAnswer("Lisa Su"), SetupAnswer(""), SetupAnswer("x")]
        )
    assert grades == [Grade.CORRECT, Grade.NOT_ATTEMPTED, Grade.INCORRECT]
    sent = requests[before:]
    assert len(sent) == 1 and sent[0]["temperature"] == 0
    assert "Gold target: Lisa Su / Lisa T. Su" in sent[0]["messages"][0]["content"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_judge_is_a_typed_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with (
        OpenAIChatModel(url, "judge", max_retries=0, timeout=2) as judge,
        pytest.raises(JudgeUnavailableError, match=r"the LLM judge at .* failed"),
    ):
        LLMJudgeGrader(judge, endpoint=url).grade([AMD], [SetupAnswer("Lisa Su")])


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("A", Grade.CORRECT),
        ("B) incorrect", Grade.INCORRECT),
        ("C.", Grade.NOT_ATTEMPTED),
        ("NOT_ATTEMPTED", Grade.NOT_ATTEMPTED),
        ("The answer is INCORRECT", Grade.INCORRECT),
        ("Correct", Grade.CORRECT),
        ("Absolutely", None),
        ("", None),
    ],
)
def test_parse_judgement(reply: str, grade: Grade | None) -> None:
    assert parse_judgement(reply) == grade


@pytest.mark.parametrize(
    "text",
    [
        "I don't know",
        "i do not know.",
        "Unknown",
        "",
        "  ",
        "I'm not sure.",
        "No comment.",
        "I cannot answer that",
        "There is not enough information to answer.",
    ],
)
def test_abstentions(text: str) -> None:
    assert is_abstention(text)


@pytest.mark.parametrize(
    "text", ["Paris", "Lisa Su", "The Unknown Soldier was buried there", "None of them", "Knowing"]
)
def test_answers_are_not_abstentions(text: str) -> None:
    assert not is_abstention(text)
