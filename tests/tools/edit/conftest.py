"""Fixtures shared by the editing tests: the corpus for key statistics and a statistics cache per module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def corpus(bundled_world: Any) -> tuple[str, ...]:
    """400 world documents: the corpus of ROME/MEMIT's key statistics and WISE's irrelevant inputs."""
    return tuple(d.text for d in bundled_world.documents[:400])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh statistics cache for each test module."""
    return tmp_path_factory.mktemp("stats")
