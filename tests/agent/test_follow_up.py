"""Follow-up questions: a pronoun stands only for a name whose known classes fit it ("she" is no company)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from agent._follow_up import follow_up
from agent.cli import main
from agent.tell import PronounKind, pronoun_fits, pronoun_kind
from eval.world import World
from kg import load_schema
from tests.agent.tell.conftest import unknown_fact


@pytest.fixture
def home(tmp_path: Path, loaded_home: Path) -> Path:
    root = tmp_path / "home"
    shutil.copytree(loaded_home, root)
    return root


def _chat(home: Path, lines: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["--home", str(home), "chat"]) == 0
    return capsys.readouterr().out


# "runs": kept as free text with an offer (the company linked, Jane Roe new); "heads": applied, so the graph
# knows Jane Roe as a CEO. Before the fix "Where was she born?" was asked about the company after "runs".
@pytest.mark.parametrize("verb", ["runs", "heads"])
def test_a_person_pronoun_after_a_statement_is_read_as_the_person_not_the_company(
    home: Path, small_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    company = unknown_fact(small_world, "company_ceo").subject
    out = _chat(home, [f"Jane Roe {verb} {company}.", "Where was she born?", "/quit"], monkeypatch, capsys)
    assert "(asked as: Where was Jane Roe born?)" in out
    assert f"(asked as: Where was {company} born?)" not in out


def test_it_after_a_statement_is_read_as_the_company(
    home: Path, small_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    out = _chat(home, [f"Jane Roe runs {fact.subject}.", "Who is its CEO?", "/quit"], monkeypatch, capsys)
    assert f"(asked as: Who is {fact.subject}'s CEO?)" in out


def test_a_pronoun_skips_names_of_the_wrong_kind_and_goes_back_to_earlier_turns() -> None:
    kinds = {"AOL": "thing", "Jane Roe": "person", "Paris": "thing"}
    names = {"Jane Roe runs AOL.": ["AOL", "Jane Roe"], "Paris is nice.": ["Paris"]}

    def fits(name: str, kind: PronounKind) -> bool:
        return kinds[name] == kind

    earlier = ["Jane Roe runs AOL.", "Paris is nice."]
    asked = follow_up("Where was she born?", earlier, names.__getitem__, fits)
    assert asked == ("Where was Jane Roe born?", "Jane Roe")
    assert follow_up("How big is it?", earlier, names.__getitem__, fits) == ("How big is Paris?", "Paris")
    assert follow_up("Who are they?", earlier, names.__getitem__, fits)[1] == "Paris"  # "they": any name
    assert follow_up("Where was she born?", ["Paris is nice."], names.__getitem__, fits) == (
        "Where was she born?", None,
    )  # fmt: skip
    assert follow_up("Where was she born?", earlier, names.__getitem__)[1] == "Paris"  # no check: the latest


def test_pronoun_kinds_and_the_schema_classes_they_fit() -> None:
    assert [pronoun_kind(q) for q in ("Where was she born?", "Who runs it?", "Who are they?", "Who won?")] == [
        "person", "thing", None, None,
    ]  # fmt: skip
    schema = load_schema()
    assert not pronoun_fits(schema, {"Company"}, "person") and pronoun_fits(schema, {"Company"}, "thing")
    assert pronoun_fits(schema, {"Person"}, "person") and not pronoun_fits(schema, {"Person"}, "thing")
    assert pronoun_fits(schema, {"Character"}, "person")  # a fictional character is not disjoint from a person
    assert pronoun_fits(schema, set(), "person") and pronoun_fits(schema, set(), "thing")  # unknown: any
