"""The world's concepts as rows for a knowledge graph, and the membership a definition edit implies.

:func:`world_concept_rows` gives ``(label, parent label, definition, instances)`` for every concept of
``concepts.jsonl``: its sampled instances, plus every entity the world names as a non-instance of some
concept, stored under the concepts whose rule makes it a member (its own class: "Alphabet Inc." is a
company), so that "Is Alphabet Inc. a place?" has a stored class to answer "no" from.
:func:`expected_members` closes the rows' instances over the hierarchy (instances of a subclass are
instances of its parents): the ground truth an instance-of answer is checked against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eval.world import load_world
from eval.world._concept_rows import concept_rows
from tools.errors import WorldFormatError

__all__ = ["ConceptEditSpec", "ConceptRow", "expected_members", "world_concept_edits", "world_concept_rows"]


@dataclass(frozen=True)
class ConceptRow:
    """One concept for :meth:`kg.ConceptGraph.load` (``non_instances``: those the world lists, not loaded)."""

    label: str
    parent: str | None
    definition: str
    instances: tuple[str, ...]
    non_instances: tuple[str, ...] = ()

    def as_tuple(self) -> tuple[str, str | None, str, tuple[str, ...]]:
        return (self.label, self.parent, self.definition, self.instances)


@dataclass(frozen=True)
class ConceptEditSpec:
    """A world definition edit: ``concept`` takes the definition of ``source`` (labels); kind sibling | distant."""

    id: str
    concept: str
    source: str
    definition: str
    kind: str


def _jsonl(path: Path) -> list[dict[str, object]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise WorldFormatError(f"cannot read {path}: {exc}") from exc


def world_concept_rows(data_dir: str | Path) -> list[ConceptRow]:
    """Every concept of the world with its instances (see the module docstring), parents before children.

    Raises:
        WorldFormatError: missing or malformed files.
    """
    root = Path(data_dir)
    if not (root / "concepts.jsonl").is_file():
        raise WorldFormatError(f"cannot read {root / 'concepts.jsonl'}: no such file")
    return [ConceptRow(*row) for row in concept_rows(load_world(root))]


def expected_members(rows: list[ConceptRow]) -> Mapping[str, frozenset[str]]:
    """Label -> the instances of the concept and of all its subclasses."""
    children: dict[str, list[str]] = {}
    for row in rows:
        if row.parent:
            children.setdefault(row.parent, []).append(row.label)
    own = {row.label: set(row.instances) for row in rows}

    def close(concept: str, seen: frozenset[str]) -> set[str]:
        out = set(own.get(concept, ()))
        for child in children.get(concept, []):
            if child not in seen:
                out |= close(child, seen | {child})
        return out

    return {row.label: frozenset(close(row.label, frozenset({row.label}))) for row in rows}


def world_concept_edits(data_dir: str | Path) -> list[ConceptEditSpec]:
    """The world's concept definition edits, in file order."""
    root = Path(data_dir)
    label = {str(r["id"]): str(r["label"]) for r in _jsonl(root / "concepts.jsonl")}
    return [
        ConceptEditSpec(str(e["id"]), str(e["subject"]), label[str(e["source"])], str(e["new_answer"]), str(e["kind"]))
        for e in _jsonl(root / "slice_edits.jsonl")
        if e.get("slice") == "concepts"
    ]
