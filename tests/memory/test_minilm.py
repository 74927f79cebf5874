"""The vector memory with the real MiniLM embedder: meaning-based search, scopes, and a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory import Scope, SentenceTransformerEmbedder, VectorMemory

pytestmark = pytest.mark.slow

FACTS = [
    "The CEO of Acme Corporation is Jane Roe.",
    "Paris is the capital of France.",
    "Vega is the brightest star in the constellation Lyra.",
    "Bananas are rich in potassium.",
    "The Nile flows north into the Mediterranean Sea.",
]


def test_semantic_search_update_and_reopen(tmp_path: Path, minilm: SentenceTransformerEmbedder) -> None:
    alice = Scope(user_id="alice")
    with VectorMemory.open(tmp_path, minilm) as memory:
        items = memory.add_many(FACTS, scope=alice)
        memory.add("The CEO of Globex is John Smith.", scope=Scope(user_id="bob"))
        hits = memory.search("Who runs Acme?", k=2, scope=alice)
        assert hits[0].item.id == items[0].id
        assert hits[0].score > hits[1].score + 0.1
        assert memory.search("Which river goes to the Mediterranean?", k=1)[0].item.id == items[4].id
        memory.update(items[0].id, "The CEO of Acme Corporation is Richard Roe.", edit_id="e-1")
        assert memory.search("Who runs Acme?", k=1, scope=alice)[0].item.text.endswith("Richard Roe.")
    with VectorMemory.open(tmp_path, minilm) as memory:
        assert memory.index_size == 7
        assert memory.search("star in Lyra", k=1)[0].item.id == items[2].id
        assert memory.rollback("e-1") == 2
        assert memory.search("Who runs Acme?", k=1, scope=alice)[0].item.text.endswith("Jane Roe.")
