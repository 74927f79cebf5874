"""Fixtures shared by the agent tests: a temp home holding a small slice of the reference world.

The working memory is the real stack (SQLite, FAISS, the embedded rdflib store, MiniLM); only the world's
UNKNOWN facts are loaded (documents into memory, triples into the KG), as in the agent benchmark.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import open_home
from agent.wiring import WorkingMemory, open_working_memory
from eval.world import World
from eval.world._build import subset_world
from eval.world._load_memory import load_world_into

RELATIONS = ("company_ceo", "company_hq", "person_mother", "person_father", "spouse", "notable_work", "creator")


@pytest.fixture(scope="session")
def small_world(bundled_world: World) -> World:
    return subset_world(bundled_world, RELATIONS, n_known=7, n_unknown=14)


@pytest.fixture(scope="session")
def loaded_home(tmp_path_factory: pytest.TempPathFactory, small_world: World, minilm: Any) -> Path:
    """A home with the small world's UNKNOWN facts loaded, built once; tests work on copies."""
    root = tmp_path_factory.mktemp("tell-home")
    with open_working_memory(open_home(root), embedder=minilm) as memory:
        load_world_into(small_world, memory.db, memory.memory, memory.graph)
    return root


@pytest.fixture
def wm(tmp_path: Path, loaded_home: Path, minilm: Any) -> Iterator[WorkingMemory]:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    with open_working_memory(open_home(home), embedder=minilm) as memory:
        memory.refresh_entities()
        yield memory
