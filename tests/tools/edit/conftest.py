"""Fixtures shared by the editing tests: the corpus for key statistics and a statistics cache per module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tools.edit._helpers import known_requests, load_models
from tools.edit import EditRequest
from tools.lm._hf import HFLanguageModel


@pytest.fixture(scope="session")
def corpus(bundled_world: Any) -> tuple[str, ...]:
    """400 world documents: the corpus of ROME/MEMIT's key statistics and WISE's irrelevant inputs."""
    return tuple(d.text for d in bundled_world.documents[:400])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh statistics cache for each test module."""
    return tmp_path_factory.mktemp("stats")


@pytest.fixture(scope="module")
def models() -> dict[str, HFLanguageModel]:
    """The bundled reference models, loaded once per test module (a module's own ``models`` overrides it)."""
    return load_models()


@pytest.fixture(scope="module")
def known(bundled_world: Any, models: dict[str, HFLanguageModel]) -> dict[str, list[EditRequest]]:
    """Per model, two edits of distinct subjects whose old object the unedited model gives."""
    return {name: known_requests(bundled_world, lm, 40, 2, by_prompt=True) for name, lm in models.items()}
