"""Reading and validating the rows of edit-dataset files (JSON arrays or JSON Lines).

A row parser raises :class:`RowError` (or an :class:`~tools.errors.InvalidEditError` from building a request);
:func:`parse_rows` turns either into a :class:`~tools.errors.WorldFormatError` that names the file and the row
(``index i`` in a JSON array, ``line n`` in JSON Lines), or skips the row with a warning when not strict.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tools.errors import InvalidEditError, WorldFormatError
from tools.lm import PromptFormat

__all__ = [
    "Row",
    "RowError",
    "Wrap",
    "first_answer",
    "parse_rows",
    "prompt_answers",
    "read_rows",
    "string_list",
    "text",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[str, str, Any]  # (where: "index 3" | "line 4", id suffix: "3" | "L4", decoded row)


class RowError(ValueError):
    """A malformed row (turned into :class:`WorldFormatError` with the file and row by :func:`parse_rows`)."""


def read_rows(path: Path) -> list[Row]:
    """The rows of a JSON array or JSON Lines file, each with its location for error messages.

    Raises:
        WorldFormatError: the file is missing, not valid JSON / JSON Lines, or not an array of rows.
    """
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorldFormatError(f"cannot read edit dataset {path}: {exc}") from exc
    if content.lstrip().startswith("["):
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise WorldFormatError(f"{path}: not valid JSON (line {exc.lineno}): {exc.msg}") from exc
        return [(f"index {i}", str(i), row) for i, row in enumerate(data)]
    rows = []
    for lineno, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((f"line {lineno}", f"L{lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise WorldFormatError(f"{path} line {lineno}: not valid JSON: {exc.msg}") from exc
    return rows


def parse_rows(path: Path, rows: list[Row], parse: Callable[[str, dict[str, Any]], T | None], strict: bool) -> list[T]:
    """``parse(id_suffix, row)`` for every row (``None``: skip the row); errors name the file and the row.

    Raises:
        WorldFormatError: a row is not an object or ``parse`` rejects it (only when ``strict``).
    """
    out = []
    for where, key, row in rows:
        try:
            if not isinstance(row, dict):
                raise RowError(f"expected a JSON object, got {type(row).__name__}")
            item = parse(key, row)
        except (RowError, InvalidEditError) as exc:
            if strict:
                raise WorldFormatError(f"{path} {where}: {exc}") from exc
            logger.warning("skipping %s %s: %s", path, where, exc)
            continue
        if item is not None:
            out.append(item)
    return out


def text(row: dict[str, Any], key: str) -> str:
    """A required non-empty string field, stripped."""
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"field {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def first_answer(value: Any) -> str | None:
    """The first non-empty string in a string, a list of aliases or a list of alias lists (``None``: none)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        return next((a for a in map(first_answer, value) if a is not None), None)
    raise RowError(f"an answer must be a string or a list of strings, got {type(value).__name__}")


def string_list(value: Any, key: str) -> list[str]:
    """A string or a list of strings as a list of non-empty stripped strings (``None``: empty)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise RowError(f"field {key!r} must be a string or a list of strings")


def prompt_answers(value: Any, key: str, answer_key: str = "ground_truth") -> list[tuple[str, str]]:
    """``[{"prompt": ..., answer_key: ...}, ...]`` as ``(prompt, first answer)`` pairs; empty answers dropped.

    A list of prompts keeps its first (as EasyEdit's KnowEdit collate does).
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError(f"{key} must be a list of {{prompt, {answer_key}}} objects")
    pairs = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or "prompt" not in item or answer_key not in item:
            raise RowError(f"{key}[{i}] must be an object with 'prompt' and {answer_key!r}")
        prompts = string_list(item["prompt"], f"{key}[{i}].prompt")
        answer = first_answer(item[answer_key])
        if prompts and answer is not None:
            pairs.append((prompts[0], answer))
    return pairs


class Wrap:
    """Wraps question prompts (ending in ``?`` or ``？``) with a prompt format; the identity without one."""

    def __init__(self, prompt_format: PromptFormat | None) -> None:
        self.prompt_format = prompt_format

    def __call__(self, prompt: str) -> str:
        if self.prompt_format is not None and prompt.rstrip().endswith(("?", "？")):
            return self.prompt_format.question(prompt.strip())
        return prompt
