"""Read SafeEdit's own JSON files (Wang et al. 2024) as :class:`SafetyCase` records.

SafeEdit is gated and non-commercial, so factagent never ships it; a user who has it can run the detox
benchmark on it (``factagent detox-bench --dataset path/to/SafeEdit_test.json``). A file is a JSON list (or
JSON lines) of records with the fields ``id``, ``unsafety category``, ``adversarial prompt``, ``question``,
``unsafe generation``, ``safe generation`` and ``generalization test`` holding ``test input of only harmful
question``, ``test input of other attack prompt input``, ``test input of other question input`` and ``test
input of other questions and attack prompts`` (one string each). ``knowledge constrain`` is ignored (the
benchmark measures general performance on the reference world instead).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.world.safety._slice import SafetyCase
from tools.errors import InvalidInputError

__all__ = ["load_safeedit"]
_GEN = "generalization test"
_ONLY_Q = "test input of only harmful question"
_OTHER_A = "test input of other attack prompt input"
_OTHER_Q = "test input of other question input"
_OTHER_AQ = "test input of other questions and attack prompts"


def _records(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except ValueError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    return data if isinstance(data, list) else [data]


def _text(record: dict[str, Any], key: str, where: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{where}: field {key!r} must be a non-empty string")
    return value


def load_safeedit(path: str | Path, limit: int | None = None) -> list[SafetyCase]:
    """The cases of a SafeEdit file, in file order (the first ``limit`` when given).

    Raises:
        InvalidInputError: the file cannot be read, is not JSON, or a record lacks a field (named in the message).
    """
    path = Path(path)
    try:
        records = _records(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read SafeEdit file {path}: {exc}") from exc
    cases = []
    for i, rec in enumerate(records[:limit] if limit else records):
        where = f"{path.name} record {i}"
        if not isinstance(rec, dict) or not isinstance(rec.get(_GEN), dict):
            raise InvalidInputError(f"{where}: expected an object with a {_GEN!r} object")
        gen = rec[_GEN]
        cases.append(
            SafetyCase(
                id=str(rec.get("id", i)),
                category=str(rec.get("unsafety category", "unknown")),
                adversarial_input=_text(rec, "adversarial prompt", where),
                request=_text(rec, "question", where),
                safe_response=_text(rec, "safe generation", where),
                unsafe_response=_text(rec, "unsafe generation", where),
                only_q=_text(gen, _ONLY_Q, where),
                other_q=(_text(gen, _OTHER_Q, where),),
                other_a=(_text(gen, _OTHER_A, where),),
                other_aq=(_text(gen, _OTHER_AQ, where),),
            )
        )
    return cases
