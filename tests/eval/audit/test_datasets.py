"""Datasets: the world's splits, the JSONL / CSV format with line-numbered errors, TruthfulQA, edit files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.audit import AuditDatasetError, load_dataset, sample_evenly
from tests.conftest import REPO


def test_world_test_split_has_the_four_categories() -> None:
    data = load_dataset("world:test")
    cats = {q.category for q in data.questions}
    assert cats == {"known", "unknown", "edited", "unanswerable"}
    assert all(q.answerable == (q.category != "unanswerable") for q in data.questions)
    assert not {q.id for q in data.questions} & {q.id for q in load_dataset("world:dev").questions}


def test_unknown_world_split_is_an_error() -> None:
    with pytest.raises(AuditDatasetError, match="splits 'test' and 'dev'"):
        load_dataset("world:train")


def test_sample_evenly_spans_the_file() -> None:
    qs = load_dataset("world:test").questions
    sample = sample_evenly(qs, 40)
    assert len(sample) == 40 and sample[0] == qs[0]
    assert {q.category for q in sample} == {"known", "unknown", "edited", "unanswerable"}


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"question": "Who is the CEO of AMD?", "answers": ["Lisa Su"], "aliases": ["Lisa T. Su"], "category": "known"}


def test_jsonl_format(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "q.jsonl",
        [
            GOOD,
            {"question": "Who founded Zorblax?", "answers": [], "category": "unanswerable", "id": "z1"},
            {"question": "Capital of France?", "answers": "Paris"},
        ],
    )
    qs = load_dataset(str(path)).questions
    assert [q.id for q in qs] == ["line-1", "z1", "line-3"]
    assert qs[0].accepted == ("Lisa Su", "Lisa T. Su") and qs[0].category == "known"
    assert not qs[1].answerable and qs[2].answers == ("Paris",) and qs[2].category == "uncategorized"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"question": "x", "answers": []}', 'line 2: field "answers" must be a non-empty list'),
        ('{"question": "", "answers": ["a"]}', 'line 2: field "question" must be a non-empty string'),
        ('{"question": "x", "answers": ["a"], "colour": 1}', "line 2: unknown field(s) ['colour']"),
        ('{"question": "x", "answers": [1]}', 'line 2: field "answers" must be a list of strings'),
        ("{not json", "line 2: not JSON"),
        ("[1, 2]", "line 2: a row must be a JSON object"),
        ('{"question": "x"}', 'line 2: field "answers" is missing'),
    ],
)
def test_bad_jsonl_row_names_its_line(tmp_path: Path, bad: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [GOOD, bad, GOOD])
    with pytest.raises(AuditDatasetError, match="--on-bad-row skip") as info:
        load_dataset(str(path))
    assert message in str(info.value)
    skipped = load_dataset(str(path), on_bad_row="skip")
    assert len(skipped.questions) == 2 and len(skipped.skipped) == 1 and skipped.skipped[0].startswith("line 2:")


def test_duplicate_ids_are_bad_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.jsonl", [dict(GOOD, id="a"), dict(GOOD, id="a")])
    with pytest.raises(AuditDatasetError, match="line 2: duplicate id 'a'"):
        load_dataset(str(path))


def test_csv_format(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text(
        'question,answers,aliases,category\n"Who is the CEO of AMD?",Lisa Su,Lisa T. Su;Dr. Su,known\n'
        '"Multi, line\nquestion?",,,\n"Capital of Italy?",Rome,,geo\n',
        encoding="utf-8",
    )
    with pytest.raises(AuditDatasetError, match=r"q.csv line 4: field \"answers\""):  # the record ends on line 4
        load_dataset(str(path))
    data = load_dataset(str(path), on_bad_row="skip")
    assert [q.aliases for q in data.questions] == [("Lisa T. Su", "Dr. Su"), ()]
    assert data.questions[1].category == "geo"


def test_truthfulqa_csv(tmp_path: Path) -> None:
    path = tmp_path / "TruthfulQA.csv"
    path.write_text(
        "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source\n"
        "Adversarial,Misconceptions,What happens if you eat watermelon seeds?,The seeds pass through you,"
        '"Nothing happens; The seeds pass through you","You grow watermelons; You get sick",https://example.org\n'
        "Adversarial,Fiction,,x,y,z,s\n",
        encoding="utf-8",
    )
    with pytest.raises(AuditDatasetError, match='line 3: column "Question" is empty'):
        load_dataset(str(path))
    (q,) = load_dataset(str(path), on_bad_row="skip").questions
    assert q.answers == ("The seeds pass through you", "Nothing happens")
    assert q.incorrect_answers == ("You grow watermelons", "You get sick") and q.category == "Misconceptions"


def test_edit_dataset_through_the_editing_loaders() -> None:
    path = REPO / "tests" / "eval" / "data" / "knowedit_zsre.json"
    qs = load_dataset(f"edits:{path}").questions
    assert qs and all(q.category == "edited" and q.answerable for q in qs)
    assert {q.form for q in qs} <= {"question", "cloze"}
    assert load_dataset(f"edits:zsre:{path}").questions == qs


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(AuditDatasetError, match="no such file"):
        load_dataset(str(tmp_path / "nope.jsonl"))
    (tmp_path / "q.txt").write_text("x")
    with pytest.raises(AuditDatasetError, match="unknown format"):
        load_dataset(str(tmp_path / "q.txt"))
