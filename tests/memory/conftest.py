"""Fixtures of the vector-memory tests: a fake embedder, a manual clock and a memory in a temp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory import VectorMemory
from tests.memory.fakes import HashEmbedder, ManualClock


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def memory(tmp_path: Path, embedder: HashEmbedder, clock: ManualClock) -> Iterator[VectorMemory]:
    with VectorMemory.open(tmp_path / "mem", embedder, clock=clock) as mem:
        yield mem
