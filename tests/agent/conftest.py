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

from agent import Agent, PolicyThresholds
from agent.config import TellSettings, open_home
from agent.tell import TellPipeline
from agent.wiring import WorkingMemory, open_working_memory
from eval.world import World
from eval.world._build import subset_world
from eval.world._load_memory import load_world_into
from tests.conftest import REPO
from tools.lm import HFLanguageModel

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


@pytest.fixture(scope="session")
def gpt2() -> HFLanguageModel:
    """The bundled GPT-2 reference model (read-only in these tests: nobody edits its weights)."""
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")


@pytest.fixture
def agent(wm: WorkingMemory, gpt2: HFLanguageModel) -> Agent:
    """An agent over ``wm`` with the default thresholds; ``tess`` is a trusted user."""
    tell = TellPipeline.open(wm, TellSettings(roles={"tess": "trusted"}))
    return Agent(wm, gpt2, thresholds=PolicyThresholds(), tell=tell)
