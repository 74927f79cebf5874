"""The ONNX Runtime embedder backend: torch's vectors in fp32, close ones in int8, a safe export cache (issue 30)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memory import SentenceTransformerEmbedder, default_model_dir
from memory._onnx_encoder import export_onnx
from tools.errors import EmbedderError

pytest.importorskip("onnxruntime")

TEXTS = [
    "The CEO of Acme Corporation is Jane Roe.",
    "Who runs Acme?",
    "Vega is the brightest star in the constellation Lyra; " * 40,  # over max_seq_length: truncated alike
    "東京は日本の首都です。",
    "x",
    "Paris is the capital of France.",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One export per test module (about 5 s on 2 cores), shared by its tests."""
    path = tmp_path_factory.mktemp("onnx-cache")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_fp32_gives_the_torch_vectors_in_the_callers_order(minilm: SentenceTransformerEmbedder, cache: Path) -> None:
    onnx = SentenceTransformerEmbedder(backend="onnx", cache_dir=cache)
    assert onnx.backend == "onnx" and onnx.dimension == minilm.dimension == 384
    got, want = onnx.embed(TEXTS), minilm.embed(TEXTS)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4  # sorting by length and trimming padding changes nothing
    assert np.abs(onnx.embed(TEXTS[::-1])[::-1] - got).max() < 1e-5


def test_int8_stays_close_to_torch_and_keeps_the_nearest_neighbour(
    minilm: SentenceTransformerEmbedder, cache: Path
) -> None:
    int8 = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=cache)
    got, want = int8.embed(TEXTS), minilm.embed(TEXTS)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() > 0.95 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    docs = ["Jane Roe runs Acme Corporation.", "The Eiffel Tower is in Paris.", "Lyra is a constellation."]
    queries = ["Who is the chief executive of Acme?", "Where is the Eiffel Tower?", "What is Lyra?"]
    for emb in (int8, minilm):
        scores = emb.embed(queries) @ emb.embed(docs).T
        assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_a_second_process_reuses_the_export(cache: Path) -> None:
    path = export_onnx(default_model_dir(), cache, "int8")
    stamp = path.stat().st_mtime_ns
    assert export_onnx(default_model_dir(), cache, "int8") == path and path.stat().st_mtime_ns == stamp
    assert not [p for p in cache.iterdir() if p.name.startswith(".export-")]  # no half-written exports left


def test_bad_models_get_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="no sentence-transformers model"):
        SentenceTransformerEmbedder(tmp_path, backend="onnx", cache_dir=tmp_path / "c")
    broken = tmp_path / "broken"
    shutil.copytree(default_model_dir(), broken)
    (broken / "modules.json").write_text("[]")
    with pytest.raises(EmbedderError, match="mean Pooling"):
        SentenceTransformerEmbedder(broken, backend="onnx", cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()  # nothing exported for a model that was refused
