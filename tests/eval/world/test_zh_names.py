"""The world's countries get their Chinese names in the KG when the world is loaded (``eval/world/_zh_names.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.config import open_home
from agent.wiring import open_working_memory
from eval.world._build import subset_world
from eval.world._load_memory import load_world_into
from eval.world._zh_names import name_world_entities_zh, world_zh_names
from kg import KnowledgeGraph, MemoryTripleStore, Provenance, load_schema
from memory import Triple
from tools.errors import InvalidInputError, WorldFormatError


def _graph() -> KnowledgeGraph:
    graph = KnowledgeGraph(MemoryTripleStore(), load_schema())
    graph.add(Triple("Chaville", "landmark_in_country", "France"), Provenance(who="world", source="d1"))
    return graph


def test_the_table_maps_english_country_names_to_chinese() -> None:
    names = world_zh_names()
    assert names["France"] == "法国" and names["Japan"] == "日本"
    assert len(names) >= 60


def test_only_entities_the_world_names_are_named_and_none_is_created() -> None:
    graph = _graph()
    graph.add(Triple("Acme", "company_hq", "Chile"), Provenance(who="bob", source="chat", namespace="bob"))
    table = {"France": "法国", "Chile": "智利", "Peru": "秘鲁"}
    assert name_world_entities_zh(graph, table) == 1
    assert graph.label_in("France", "zh") == "法国"
    assert graph.names_of("Peru") == []  # no fact names it: still no entity
    assert graph.label_in("Chile", "zh") is None  # bob's entity: not the world's to name
    assert name_world_entities_zh(graph, table) == 0  # idempotent


def test_the_namespace_of_the_worlds_edits_is_named_when_asked() -> None:
    graph = _graph()
    told = Provenance(who="world-edits", source="e1", namespace="world-edits")
    graph.add(Triple("Bay", "landmark_in_country", "Philippines"), told)
    table = {"France": "法国", "Philippines": "菲律宾"}
    assert name_world_entities_zh(graph, table) == 1  # France only: the world names no Philippines
    assert graph.label_in("Philippines", "zh", namespaces=["world-edits", "world"]) is None
    assert name_world_entities_zh(graph, table, namespaces=("world-edits",)) == 1
    assert graph.label_in("Philippines", "zh", namespaces=["world-edits", "world"]) == "菲律宾"
    assert graph.label_in("Philippines", "zh", namespaces=["world"]) is None
    with pytest.raises(InvalidInputError):
        name_world_entities_zh(graph, table, namespaces="world")


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\xff\xfe invalid utf-8",
        json.dumps({"countries": {"France": "法国"}}).encode(),
        json.dumps({"countries": [["France", "法国"]]}).encode(),
        json.dumps({"countries": [["France", "France", "Paris"]]}).encode(),
        json.dumps({"countries": [["France", "法国", "巴黎"], ["France", "法兰西", "巴黎"]]}).encode(),
        json.dumps(["France"]).encode(),
    ],
)
def test_a_bad_table_is_a_world_format_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "own.json"
    path.write_bytes(content)
    with pytest.raises(WorldFormatError):
        world_zh_names(path)


def test_a_missing_table_is_a_world_format_error(tmp_path: Path) -> None:
    with pytest.raises(WorldFormatError):
        world_zh_names(tmp_path / "absent.json")


def test_loading_the_world_names_its_countries_in_chinese(tmp_path: Path, bundled_world: Any, minilm: Any) -> None:
    world = subset_world(bundled_world, ("landmark_in_country",), n_known=4, n_unknown=4)
    table = world_zh_names()
    with open_working_memory(open_home(tmp_path), embedder=minilm) as wm:
        report = load_world_into(world, wm.db, wm.memory, wm.graph)
        countries = {f.object for f in world.facts if f.split == "unknown"} & set(table)
        assert countries and report.zh_names == len(countries)
        for country in countries:
            assert wm.graph.label_in(country, "zh") == table[country]
            assert wm.graph.get_entity(country).label == country  # the English label stays the name
        again = load_world_into(world, wm.db, wm.memory, wm.graph)
        assert again.zh_names == 0
        bare = load_world_into(world, wm.db, wm.memory, wm.graph, include_zh_names=False)
        assert bare.zh_names == 0
