"""Audit datasets: the reference world's questions, a documented JSONL / CSV format, TruthfulQA's CSV, and
edit datasets through :func:`eval.editing.load_edit_dataset`.

Dataset specs (the CLI's ``--dataset``):

* ``world:test`` / ``world:dev`` — the bundled world's questions of that split; categories ``known``,
  ``unknown``, ``edited``, ``unanswerable`` (from the question kinds).
* ``world-zh:test`` / ``world-zh:dev`` — the world's Chinese questions of that split; categories
  ``<CKnowEdit category>/<kind>`` (``poetry_next/known``, ...; :mod:`eval.audit._world_zh`).
* ``PATH.jsonl`` (or ``.json`` holding JSON Lines) — one object per line:

  ==================  ========  ===================================================================
  field               required  meaning
  ==================  ========  ===================================================================
  ``question``        yes       the question text (non-empty string)
  ``answers``         yes       gold answers: a list of strings (a single string is one answer);
                                empty only when ``category`` is ``unanswerable``
  ``aliases``         no        other accepted names (list of strings)
  ``category``        no        breakdown in the report (default ``uncategorized``)
  ``id``              no        unique id (default ``line-<n>``)
  ``incorrect_answers`` no      known wrong answers (list of strings)
  ==================  ========  ===================================================================

  Unknown fields are errors. Example: ``{"question": "Who is the CEO of AMD?", "answers": ["Lisa Su"],
  "category": "known"}``.
* ``PATH.csv`` — a header row with the same column names; ``answers``, ``aliases`` and
  ``incorrect_answers`` hold ``;``-separated lists. A header with TruthfulQA's columns (``Type``,
  ``Category``, ``Question``, ``Best Answer``, ``Correct Answers``, ``Incorrect Answers``, ``Source``) is read
  as TruthfulQA: the answers are the best answer then the correct ones, the category is ``Category``.
* ``safety:test`` — the safety slice's held-out harmful requests, bare and wrapped in each held-out attack
  template (category ``harmful``, no gold answer: the right response is to refuse, which grades as not
  attempted); :func:`eval.world.safety.unsafe_response_rates` adds each setup's unsafe-response rate.
* ``edits:PATH`` or ``edits:FORMAT:PATH`` — an edit dataset (zsre, counterfact, wiki_recent, cknowedit,
  pitfalls): the edit prompt and its paraphrases, each answered by the new object (category ``edited``).

A malformed row raises :class:`AuditDatasetError` naming the file and line; with ``on_bad_row="skip"`` it is
skipped and reported in :attr:`Dataset.skipped`.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from eval.audit._errors import AuditDatasetError
from eval.audit._types import CATEGORIES, UNANSWERABLE, AuditQuestion

__all__ = ["Dataset", "OnBadRow", "load_dataset", "sample_evenly", "world_questions"]

logger = logging.getLogger(__name__)
OnBadRow = Literal["fail", "skip"]
_FIELDS = {"question", "answers", "aliases", "category", "id", "incorrect_answers"}
_TRUTHFULQA = {"Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers"}
_EDIT_FORMATS = ("zsre", "counterfact", "wiki_recent", "cknowedit", "pitfalls")


@dataclass(frozen=True)
class Dataset:
    """Questions of one dataset, in file order, and the rows that were skipped (``"line n: why"``)."""

    name: str
    questions: tuple[AuditQuestion, ...]
    skipped: tuple[str, ...] = field(default=())


class _RowError(ValueError):
    """One row's problem (turned into a message with the file and line)."""


def world_questions(world: Any, split: str) -> list[AuditQuestion]:
    """The world's questions of ``split`` as audit questions (kinds mapped to report categories)."""
    return [
        AuditQuestion(
            id=q.id,
            text=q.text,
            answers=tuple(q.answers),
            category=CATEGORIES.get(q.kind, q.kind),
            subject=q.subject,
            relation=q.relation,
        )
        for q in world.questions_in(split)
    ]


def sample_evenly(questions: tuple[AuditQuestion, ...], limit: int | None) -> tuple[AuditQuestion, ...]:
    """``limit`` questions at evenly spaced positions (every category of a sorted file is represented)."""
    if limit is None or limit >= len(questions):
        return questions
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    step = len(questions) / limit
    return tuple(questions[int(i * step)] for i in range(limit))


def load_dataset(spec: str, *, on_bad_row: OnBadRow = "fail", world_dir: Path | None = None) -> Dataset:
    """Read the dataset ``spec`` names (see the module docstring).

    Raises:
        AuditDatasetError: unknown spec or format, missing file, or (``on_bad_row="fail"``) a malformed row.
    """
    if spec.startswith(("world:", "world-zh:")):
        kind, _, split = spec.partition(":")
        if split not in ("test", "dev"):
            raise AuditDatasetError(f"dataset {spec!r}: the world has splits 'test' and 'dev'")
        from eval.audit._world_zh import world_zh_questions
        from eval.world import load_world
        from eval.world._pipeline import DATA_DIR

        world = load_world(world_dir or DATA_DIR)
        questions = world_questions(world, split) if kind == "world" else world_zh_questions(world, split)
        return Dataset(spec, tuple(questions))
    if spec.startswith("edits:"):
        return _edit_dataset(spec, on_bad_row)
    if spec.startswith("safety:"):
        return _safety_dataset(spec)
    path = Path(spec)
    if not path.is_file():
        raise AuditDatasetError(
            f"dataset {spec}: no such file (or use world:test, world:dev, world-zh:test, edits:PATH)"
        )
    if path.suffix.lower() == ".csv":
        return _collect(spec, _csv_rows(path), on_bad_row)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return _collect(spec, _jsonl_rows(path), on_bad_row)
    raise AuditDatasetError(f"dataset {spec}: unknown format (expected .jsonl or .csv)")


def _collect(name: str, rows: Iterator[tuple[int, Callable[[], AuditQuestion]]], on_bad_row: OnBadRow) -> Dataset:
    questions: list[AuditQuestion] = []
    skipped: list[str] = []
    seen: set[str] = set()
    hint = " (use --on-bad-row skip to continue)" if on_bad_row == "fail" else ""
    for lineno, make in rows:
        try:
            question = make()
            if question.id in seen:
                raise _RowError(f"duplicate id {question.id!r}")
        except _RowError as exc:
            message = f"{name} line {lineno}: {exc}"
            if on_bad_row == "fail":
                raise AuditDatasetError(message + hint) from None
            logger.warning("skipping %s", message)
            skipped.append(f"line {lineno}: {exc}")
            continue
        seen.add(question.id)
        questions.append(question)
    return Dataset(name, tuple(questions), tuple(skipped))


def _strings(value: Any, name: str, sep: str | None = None) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items = value.split(sep) if sep else [value]
    elif isinstance(value, list):
        items = value
    else:
        raise _RowError(f'field "{name}" must be a list of strings')
    if not all(isinstance(v, str) for v in items):
        raise _RowError(f'field "{name}" must be a list of strings')
    return tuple(dict.fromkeys(v.strip() for v in items if v.strip()))


def _question(row: dict[str, Any], lineno: int, sep: str | None) -> AuditQuestion:
    extra = set(row) - _FIELDS
    if extra:
        raise _RowError(f"unknown field(s) {sorted(extra)} (expected {sorted(_FIELDS)})")
    text = row.get("question")
    if not isinstance(text, str) or not text.strip():
        raise _RowError('field "question" must be a non-empty string')
    if "answers" not in row:
        raise _RowError('field "answers" is missing')
    category = row.get("category") or "uncategorized"
    if not isinstance(category, str):
        raise _RowError('field "category" must be a string')
    answers = _strings(row.get("answers"), "answers", sep)
    if not answers and category != UNANSWERABLE:
        raise _RowError('field "answers" must be a non-empty list (or category "unanswerable")')
    qid = row.get("id") or f"line-{lineno}"
    return AuditQuestion(
        id=str(qid),
        text=text.strip(),
        answers=answers,
        aliases=_strings(row.get("aliases"), "aliases", sep),
        category=category,
        incorrect_answers=_strings(row.get("incorrect_answers"), "incorrect_answers", sep),
    )


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Callable[[], AuditQuestion]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditDatasetError(f"dataset {path}: cannot read ({exc})") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue

        def make(line: str = line, lineno: int = lineno) -> AuditQuestion:
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _RowError(f"not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise _RowError("a row must be a JSON object")
            return _question(row, lineno, None)

        yield lineno, make


def _csv_rows(path: Path) -> Iterator[tuple[int, Callable[[], AuditQuestion]]]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise AuditDatasetError(f"dataset {path}: cannot read ({exc})") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or ())
        truthfulqa = header >= _TRUTHFULQA
        if not truthfulqa and not {"question", "answers"} <= header:
            raise AuditDatasetError(
                f"dataset {path} line 1: the header needs question and answers columns, or TruthfulQA's columns"
            )
        index = 0
        try:
            for row in reader:
                lineno = reader.line_num
                index += 1
                if truthfulqa:
                    yield lineno, functools.partial(_truthfulqa, row, index)
                else:
                    cleaned = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
                    if None in row:
                        yield lineno, _raiser("more cells than header columns")
                    else:
                        yield lineno, functools.partial(_question, cleaned, lineno, ";")
        except (csv.Error, UnicodeDecodeError) as exc:
            raise AuditDatasetError(f"dataset {path} line {reader.line_num}: {exc}") from exc


def _raiser(message: str) -> Callable[[], AuditQuestion]:
    def fail() -> AuditQuestion:
        raise _RowError(message)

    return fail


def _truthfulqa(row: dict[str, Any], index: int) -> AuditQuestion:
    text = (row.get("Question") or "").strip()
    if not text:
        raise _RowError('column "Question" is empty')
    answers = _strings(row.get("Best Answer"), "Best Answer") + _strings(
        row.get("Correct Answers"), "Correct Answers", ";"
    )
    answers = tuple(dict.fromkeys(answers))
    if not answers:
        raise _RowError('columns "Best Answer" and "Correct Answers" are both empty')
    return AuditQuestion(
        id=f"tqa-{index:04d}",
        text=text,
        answers=answers,
        category=(row.get("Category") or "uncategorized").strip(),
        incorrect_answers=_strings(row.get("Incorrect Answers"), "Incorrect Answers", ";"),
    )


def _edit_dataset(spec: str, on_bad_row: OnBadRow) -> Dataset:
    from eval.editing import load_edit_dataset

    rest = spec.removeprefix("edits:")
    fmt, _, path = rest.partition(":")
    if fmt not in _EDIT_FORMATS or not path:
        fmt, path = "auto", rest
    cases = load_edit_dataset(path, fmt, strict=on_bad_row == "fail")  # type: ignore[arg-type]
    questions: list[AuditQuestion] = []
    for case in cases:
        prompts = (case.request.prompt, *case.paraphrases)
        for j, prompt in enumerate(dict.fromkeys(prompts)):
            questions.append(
                AuditQuestion(
                    id=f"{case.id}/{j}",
                    text=prompt,
                    answers=(case.request.target_new,),
                    category="edited",
                    form="question" if prompt.rstrip().endswith("?") else "cloze",
                    subject=case.request.subject,
                    relation=case.relation,
                )
            )
    return Dataset(spec, tuple(questions))


def _safety_dataset(spec: str) -> Dataset:
    from eval.world.safety import load_safety_slice

    if spec != "safety:test":
        raise AuditDatasetError(f"dataset {spec!r}: the safety slice is audited on 'safety:test'")
    sl = load_safety_slice()
    questions = [AuditQuestion(id=r.id, text=r.text, answers=(), category="harmful") for r in sl.requests_in("test")]
    questions += [
        AuditQuestion(id=f"{r.id}/{a.id}", text=a.wrap(r.text), answers=(), category="harmful")
        for r in sl.requests_in("test")
        for a in sl.attacks_in("test")
    ]
    return Dataset(spec, tuple(questions))
