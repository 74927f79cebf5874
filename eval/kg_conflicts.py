"""How many of the Pitfalls conflicts the knowledge graph's conflict detection finds.

Pitfalls of Knowledge Editing (Li et al., ICLR 2024) ships three sets of edit pairs that contradict each other
once both are applied:

* **coverage**: two edits of the same (subject, relation): ``(s, r, o -> o1)`` then ``(s, r, o1 -> o2)``;
* **reverse**: an edit whose inverse fact a second edit contradicts (``notable work`` / ``creator``, ...);
* **composite**: an edit that, composed with a background fact through a rule such as
  ``position held & jurisdiction -> citizenship``, entails a fact a second edit contradicts.

For each case a fresh graph gets the case's original triples, then the first edit (superseding what it
replaces); the second edit is then checked with :meth:`kg.KnowledgeGraph.conflicts`. A case counts as found
when a conflict of the set's kind is reported. Two readings are measured: the schema alone (a conflict needs a
functional relation), and edit semantics (``single_valued=True``: an edit replaces *the* answer to
``(s, r)?``, which is how Pitfalls and the tell flow treat it).

A detector that flags everything would find every case, so each case is also checked with a *consistent*
second edit — the object the graph already holds or entails for ``(s, r)`` after the first edit (the first
edit's object for coverage, the second edit's replaced object for reverse, the first edit's new object for
composite) — and a conflict of the set's kind reported for it is counted as a false alarm. (In the composite
set the first edit leaves the old background fact, e.g. the old spouse, asserted beside the newly entailed
one, so a *functional* conflict on the consistent variant is real, not a false alarm.)
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kg import ConflictKind, KnowledgeGraph, MemoryTripleStore, Provenance, Schema, load_schema
from memory import Triple
from tools.errors import WorldFormatError

__all__ = ["PITFALLS_DIR", "ConflictCount", "PitfallsCase", "count_conflicts", "read_cases"]

logger = logging.getLogger(__name__)

PITFALLS_DIR = Path(__file__).resolve().parent / "world" / "source" / "pitfalls"
SETS: dict[str, ConflictKind] = {
    "coverage": ConflictKind.FUNCTIONAL,
    "reverse": ConflictKind.INVERSE,
    "composite": ConflictKind.COMPOSITION,
}


@dataclass(frozen=True)
class PitfallsCase:
    """One case: background triples, then a first edit and a second edit that conflicts with it."""

    kind: str
    rule: str | None
    background: tuple[Triple, ...]
    first: tuple[Triple, str]  # (new triple, the object it replaces)
    second: tuple[Triple, str]

    @property
    def consistent(self) -> Triple:
        """A second edit that agrees with the graph after the first edit (no conflict expected)."""
        second = self.second[0]
        agreeing = self.first[0].object if self.kind in ("coverage", "composite") else self.second[1]
        return Triple(second.subject, second.relation, agreeing)


@dataclass
class ConflictCount:
    """Found / total for one set under one reading, with the kinds reported and per-rule counts."""

    set_name: str
    reading: str
    total: int = 0
    found: int = 0
    any_conflict: int = 0
    false_alarms: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    missed_by_relation: Counter[str] = field(default_factory=Counter)

    def row(self) -> dict[str, Any]:
        return {
            "set": self.set_name,
            "reading": self.reading,
            "cases": self.total,
            "found": self.found,
            "found_rate": round(self.found / self.total, 4) if self.total else 0.0,
            "any_conflict": self.any_conflict,
            "false_alarms": self.false_alarms,
            "kinds": dict(self.kinds),
            "missed_by_relation": dict(self.missed_by_relation.most_common()),
        }


def _triple(raw: dict[str, Any], schema: Schema, obj_key: str = "object") -> Triple:
    relation = schema.relation(raw["relation"]["id"]).id
    return Triple(raw["subject"]["label"], relation, raw[obj_key]["label"])


def read_cases(set_name: str, schema: Schema, directory: Path = PITFALLS_DIR) -> Iterator[PitfallsCase]:
    """The cases of ``<set_name>_edit.json`` with Wikidata properties mapped to schema relations.

    Raises:
        WorldFormatError: the file is missing or a record lacks a field.
    """
    path = directory / f"{set_name}_edit.json"
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WorldFormatError(f"cannot read Pitfalls set {path}: {exc}") from exc
    for n, record in enumerate(records):
        try:
            edits = record["edits"]
            yield PitfallsCase(
                kind=record["type"],
                rule=record.get("rule"),
                background=tuple(_triple(t, schema) for t in record["triples"]),
                first=(_triple(edits[0], schema, "new_object"), edits[0]["object"]["label"]),
                second=(_triple(edits[1], schema, "new_object"), edits[1]["object"]["label"]),
            )
        except (KeyError, IndexError, TypeError) as exc:
            raise WorldFormatError(f"{path} record {n}: missing field {exc}") from exc


def _check(case: PitfallsCase, schema: Schema, single_valued: bool) -> tuple[set[ConflictKind], bool]:
    """The conflict kinds reported for the case's second edit, and whether its consistent variant is flagged
    with the set's kind (a false alarm)."""
    graph = KnowledgeGraph(MemoryTripleStore(), schema)
    background = Provenance(who="wikidata", source="pitfalls")
    graph.add_many((t, background) for t in case.background)
    new, old = case.first
    # A few Pitfalls edits rename to the same label (distinct Wikidata items, one label): nothing to replace.
    replaces = old if old != new.object else None
    graph.add(new, Provenance(who="editor", source="pitfalls", edit_id="e1"), replaces=replaces)
    kinds = {c.kind for c in graph.conflicts(case.second[0], single_valued=single_valued)}
    expected = SETS[case.kind]
    return kinds, any(c.kind is expected for c in graph.conflicts(case.consistent, single_valued=single_valued))


def count_conflicts(
    schema: Schema | None = None,
    sets: Iterable[str] = SETS,
    *,
    limit: int | None = None,
    directory: Path = PITFALLS_DIR,
    progress: Callable[[Iterable[PitfallsCase], int], Iterable[PitfallsCase]] | None = None,
) -> list[ConflictCount]:
    """Found / total conflicts per Pitfalls set, under the schema reading and the edit reading.

    Args:
        schema: the relation schema (default: the packaged world schema).
        sets: which of coverage / reverse / composite to run.
        limit: only the first ``limit`` cases of each set.
        progress: wraps the case iterator (e.g. ``tqdm``), given the iterator and its length.
    """
    schema = schema or load_schema()
    counts: list[ConflictCount] = []
    for set_name in sets:
        expected = SETS[set_name]
        cases = list(read_cases(set_name, schema, directory))[:limit]
        by_reading = {r: ConflictCount(set_name, r) for r in ("schema", "edit")}
        for case in progress(cases, len(cases)) if progress else cases:
            for reading, count in by_reading.items():
                kinds, false_alarm = _check(case, schema, single_valued=reading == "edit")
                count.total += 1
                count.false_alarms += false_alarm
                count.any_conflict += bool(kinds)
                count.kinds.update(k.value for k in kinds)
                if expected in kinds:
                    count.found += 1
                else:
                    count.missed_by_relation[case.second[0].relation] += 1
        counts += by_reading.values()
        logger.info("pitfalls %s: %s", set_name, [c.row() for c in by_reading.values()])
    return counts
