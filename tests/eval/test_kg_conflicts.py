"""Conflict detection on the Pitfalls coverage, reverse and composite sets (first cases of each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.kg_conflicts import count_conflicts, read_cases
from kg import load_schema
from tools.errors import WorldFormatError


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str], dict]:
    return {(c.set_name, c.reading): c.row() for c in count_conflicts(limit=40)}


@pytest.mark.parametrize("set_name", ["coverage", "reverse", "composite"])
def test_edit_reading_finds_every_conflict_without_false_alarms(rows: dict, set_name: str) -> None:
    row = rows[(set_name, "edit")]
    assert row["cases"] == 40
    assert row["found"] == 40
    assert row["false_alarms"] == 0


def test_schema_reading_misses_only_multi_valued_relations(rows: dict) -> None:
    schema = load_schema()
    for set_name in ("coverage", "reverse", "composite"):
        row = rows[(set_name, "schema")]
        assert 0 < row["found"] < row["cases"]
        assert row["false_alarms"] == 0
        for relation in row["missed_by_relation"]:
            assert not schema.relation(relation).functional


def test_cases_map_wikidata_properties_to_schema_relations() -> None:
    case = next(read_cases("reverse", load_schema()))
    assert case.rule == "P800>P170"
    assert case.first[0].relation == "notable_work"
    assert case.second[0].relation == "creator"
    assert case.consistent.object == case.first[0].subject  # the creator the first edit implies


def test_missing_set_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(WorldFormatError):
        list(read_cases("coverage", load_schema(), tmp_path))
