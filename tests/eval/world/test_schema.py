"""The world file format: round trip and validation errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.world import Fact, Question, Relation, World, load_world, write_world
from tools.errors import WorldFormatError


@pytest.fixture()
def small_world() -> World:
    rel = Relation(
        id="r",
        label="r",
        functional=True,
        cloze=("{} is in",),
        questions=("Where is {}?",),
        statements=("{} is in {}.",),
        heldout=("{} lies in",),
    )
    fact = Fact(id="f1", relation="r", subject="Paris", object="France", split="known")
    q = Question(
        id="q1",
        kind="known",
        split="dev",
        text="Where is Paris?",
        answers=("France",),
        relation="r",
        subject="Paris",
        fact_id="f1",
    )
    return World(relations=(rel,), facts=(fact,), edits=(), questions=(q,), documents=(), manifest={"seed": 1})


def test_round_trip(tmp_path: Path, small_world: World) -> None:
    write_world(small_world, tmp_path)
    assert load_world(tmp_path) == small_world


def test_not_a_world(tmp_path: Path) -> None:
    with pytest.raises(WorldFormatError, match=r"no manifest\.json"):
        load_world(tmp_path)


def test_missing_file(tmp_path: Path, small_world: World) -> None:
    write_world(small_world, tmp_path)
    (tmp_path / "edits.jsonl").unlink()
    with pytest.raises(WorldFormatError, match="missing world file"):
        load_world(tmp_path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "facts.jsonl line 2"),
        ('{"id": "f2", "relation": "r", "subject": "a", "object": "b", "split": "known", "extra": 1}', "unknown field"),
        ('{"id": "f2", "relation": "r", "subject": "a"}', "facts.jsonl line 2"),
        ('["a", "list"]', "JSON object"),
        ('{"id": "f2", "relation": "zzz", "subject": "a", "object": "b", "split": "known"}', "unknown relation"),
    ],
)
def test_bad_lines(tmp_path: Path, small_world: World, line: str, message: str) -> None:
    write_world(small_world, tmp_path)
    with (tmp_path / "facts.jsonl").open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(WorldFormatError, match=message):
        load_world(tmp_path)


def test_unanswerable_must_have_no_answers(tmp_path: Path, small_world: World) -> None:
    write_world(small_world, tmp_path)
    bad = {
        "id": "q2",
        "kind": "unanswerable",
        "split": "dev",
        "text": "?",
        "answers": ["x"],
        "relation": "r",
        "subject": "Zork",
    }
    with (tmp_path / "questions.jsonl").open("a") as handle:
        handle.write(json.dumps(bad) + "\n")
    with pytest.raises(WorldFormatError, match="q2"):
        load_world(tmp_path)
