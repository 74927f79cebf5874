"""``factagent chat``: a script piped through the CLI against a real agent, and the reply formatting."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from agent._answer import Answer
from agent.cli import main
from agent.cli._chat import format_answer, is_question
from agent.retrieval import Citation, Evidence
from eval.world import World
from memory import Triple
from tests.agent.tell.conftest import unknown_fact


def _chat(home: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    return main(["--home", str(home), "chat", *args])


@pytest.fixture
def home(tmp_path: Path, loaded_home: Path) -> Path:
    """A home whose memory already holds (a slice of) the world, so the chat does not load all of it."""
    root = tmp_path / "home"
    shutil.copytree(loaded_home, root)
    return root


def test_a_piped_chat_asks_tells_explains_and_undoes(
    home: Path, small_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    question = f"Who is the CEO of {fact.subject}?"
    script = [
        question,
        "/why",
        f"The CEO of {fact.subject} is Jane Roe.",
        question,
        f"/history {fact.subject}",
        "/undo",
        question,
        "",
        "Who is the mother of Vuxvol Bredioskren?",
        "hello there",
        "/rollback e-00000000",
        "/bogus",
        "/quit",
        "Who is never asked?",
    ]
    assert _chat(home, script, monkeypatch, "--user", "alice") == 0
    out = capsys.readouterr().out.splitlines()
    replies = [line for line in out if line.startswith("factagent> ")]
    assert replies[0].startswith(f"factagent> {fact.object}.  [kg ")
    assert any(line.startswith(f'  linked: subject "{fact.subject}", relation company_ceo') for line in out)
    assert any(line.startswith("  policy: kg") for line in out)
    noted = replies[1]
    assert noted.startswith("factagent> Noted as edit e-") and "(" + fact.subject + ", CEO, Jane Roe)" in noted
    edit_id = noted.split()[4].rstrip(":")
    assert replies[2].startswith("factagent> Jane Roe.  [kg ") and f"edit {edit_id} · told by alice" in replies[2]
    assert any(line.startswith(f"  {edit_id}") and "alice" in line and "Jane Roe" in line for line in out)
    assert replies[3].startswith(f"factagent> Rolled back edit {edit_id}")
    assert replies[4].startswith(f"factagent> {fact.object}.  [kg ")
    assert replies[5].startswith("factagent> I don't know.  [abstain: ")
    assert replies[6] == "factagent> Not an edit: chit-chat."
    assert replies[7].startswith("factagent> error: no edit 'e-00000000'")
    assert replies[8] == "factagent> error: unknown command /bogus (try /help)"
    assert replies[9] == "factagent> bye." and len(replies) == 10  # nothing after /quit


def test_a_bad_user_name_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _chat(home, ["/quit"], monkeypatch, "--user", "not a name!") == 2
    assert capsys.readouterr().err.startswith("error: a user name is")


@pytest.mark.parametrize(
    ("line", "question"),
    [
        ("Who runs Acme?", True),
        ("who runs Acme", True),
        ("Is Paris in France", True),
        ("Acme is based in Paris?", True),
        ("The CEO of Acme is Jane Roe.", False),
        ("Paris is the capital of France.", False),
        ("", False),
    ],
)
def test_questions_are_recognised(line: str, question: bool) -> None:
    assert is_question(line) is question


def test_answers_are_formatted_with_their_source() -> None:
    triple = Triple("Acme Corp", "company_ceo", "Jane Roe")
    cite = Citation(assertion_id="a-1", triple=triple, edit_id="e-7f3a01c2", who="user:alice")
    evidence = Evidence("Acme Corp — CEO — Jane Roe.", 1.0, "kg", cite)
    kg = format_answer(Answer("Jane Roe", "kg", 0.91, (evidence,), "kg hit"))
    assert kg == "Jane Roe.  [kg 0.91 · edit e-7f3a01c2 · told by alice]"
    abstain = format_answer(Answer("", "abstain", 0.0, (), "no memory hit, model confidence 0.18 < 0.62"))
    assert abstain == "I don't know.  [abstain: no memory hit, model confidence 0.18 < 0.62]"
    parametric = format_answer(Answer("Paris", "parametric", 0.8, (), "model p=0.80"))
    assert parametric == "Paris.  [parametric 0.80 · model p=0.80]"


def test_a_follow_up_question_reads_its_pronoun_as_the_last_subject(
    home: Path, small_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    script = [f"Who is the CEO of {fact.subject}?", "Who is its CEO?", "/quit"]
    assert _chat(home, script, monkeypatch) == 0
    out = capsys.readouterr().out
    assert f"(asked as: Who is {fact.subject}'s CEO?)" in out
    assert out.count(f"{fact.object}.  [kg") == 2
