"""Fixtures of the tell-pipeline tests (the working memory fixtures are in ``tests/agent/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agent.config import TellSettings
from agent.tell import TellPipeline
from agent.wiring import WorkingMemory
from eval.world import Fact, World


@pytest.fixture
def make_pipeline(wm: WorkingMemory) -> Callable[..., TellPipeline]:
    """A pipeline over ``wm`` with ``TellSettings`` fields overridden by keyword."""

    def make(**settings: Any) -> TellPipeline:
        return TellPipeline.open(wm, TellSettings(**settings))

    return make


@pytest.fixture
def pipeline(make_pipeline: Callable[..., TellPipeline]) -> TellPipeline:
    return make_pipeline(roles={"root": "admin", "tess": "trusted", "mallory": "untrusted"})


def unknown_fact(world: World, relation: str) -> Fact:
    """The first UNKNOWN fact of ``relation`` (loaded into the KG by the fixtures)."""
    return next(f for f in world.facts if f.split == "unknown" and f.relation == relation)


def snapshot(wm: WorkingMemory) -> tuple[set[Any], list[tuple[Any, ...]]]:
    """Every KG quad and every memory row (all versions), to compare states exactly."""
    quads = set(wm.store.quads())
    with wm.db.read() as conn:
        rows = [tuple(r) for r in conn.execute("SELECT * FROM mem_items ORDER BY row_id").fetchall()]
    return quads, rows
