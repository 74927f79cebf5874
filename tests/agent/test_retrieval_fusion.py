"""The retriever's lexical channel: memory passages by meaning and by words, fused (``fusion="rrf"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.retrieval import HybridRetriever
from memory import Scope, VectorMemory
from tests.memory.fakes import HashEmbedder
from tools.errors import ConfigError

WORLD = Scope(agent_id="world")


def test_rrf_finds_the_chinese_passage_the_vectors_miss(tmp_path: Path) -> None:
    embedder = HashEmbedder()  # whitespace words: a Chinese sentence is one "word", so vectors cannot match it
    with VectorMemory.open(tmp_path / "m", embedder) as memory:
        memory.add_many([f"filler sentence {i}" for i in range(20)] + ["法国的首都是巴黎。"], scope=WORLD)
        none: Any = None
        vector = HybridRetriever(memory, none, none, none)
        fused = HybridRetriever(memory, none, none, none, fusion="rrf")
        question = "法国的首都是哪里？"
        assert "法国的首都是巴黎。" not in [h.item.text for h in vector.memory_hits(question, k=3, scope=WORLD)]
        hits = {h.item.text: h.score for h in fused.memory_hits(question, k=3, scope=WORLD)}
        assert hits["法国的首都是巴黎。"] == pytest.approx(0.5)  # first of the two lists, absent from the other


def test_an_unknown_fusion_is_a_config_error(tmp_path: Path) -> None:
    none: Any = None
    with pytest.raises(ConfigError):
        HybridRetriever(none, none, none, none, fusion="bm25")  # type: ignore[arg-type]
