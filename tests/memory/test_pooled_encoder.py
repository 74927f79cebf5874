"""The fast MiniLM path (transformers alone) gives sentence-transformers' vectors (issue 16, item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memory import SentenceTransformerEmbedder, default_model_dir
from memory._pooled_encoder import PooledEncoder
from tools.errors import EmbedderError

TEXTS = [
    "The CEO of Acme Corporation is Jane Roe.",
    "Who runs Acme?",
    "Vega is the brightest star in the constellation Lyra; " * 40,  # over max_seq_length: truncated alike
    "東京は日本の首都です。",
    "x",
]


def test_the_default_embedder_takes_the_fast_path_and_matches_sentence_transformers(
    minilm: SentenceTransformerEmbedder,
) -> None:
    assert minilm.backend == "transformers"
    reference = SentenceTransformerEmbedder(backend="sentence-transformers")
    assert reference.backend == "sentence-transformers" and reference.dimension == minilm.dimension == 384
    fast, slow = minilm.embed(TEXTS), reference.embed(TEXTS)
    assert fast.shape == slow.shape == (len(TEXTS), 384) and fast.dtype == np.float32
    assert np.abs(fast - slow).max() < 1e-5
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert np.abs(minilm.embed(TEXTS[:2]) - fast[:2]).max() < 1e-6  # padding in a batch changes nothing


def test_the_lean_bert_gives_transformers_vectors(minilm: SentenceTransformerEmbedder) -> None:
    from tools.lean import load_encoder

    lean = SentenceTransformerEmbedder(encoder_loader=load_encoder)  # what [runtime] lean = "auto" wires
    assert lean.backend == "lean" and lean.dimension == minilm.dimension
    assert np.abs(lean.embed(TEXTS) - minilm.embed(TEXTS)).max() < 1e-6


def test_other_layouts_are_left_to_sentence_transformers(tmp_path: Path) -> None:
    assert PooledEncoder.supports(default_model_dir())
    model = tmp_path / "cls-pooled"
    model.mkdir()
    (model / "1_Pooling").mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (model / "modules.json").write_text(json.dumps(modules))
    (model / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert not PooledEncoder.supports(model)
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    assert PooledEncoder.supports(model)
    assert not PooledEncoder.supports(tmp_path / "missing")


def _cpu_bf16() -> bool:
    import torch

    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(probe and probe())


@pytest.mark.skipif(not _cpu_bf16(), reason="this CPU has no native bfloat16")
def test_bf16_stays_within_a_hair_of_float32_and_keeps_the_neighbours(minilm: SentenceTransformerEmbedder) -> None:
    bf16 = SentenceTransformerEmbedder(backend="torch-bf16", device="cpu")
    assert bf16.backend == "torch-bf16" and bf16.dimension == 384
    got, want = bf16.embed(TEXTS), minilm.embed(TEXTS)
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * want).sum(axis=1)
    assert cosines.min() > 0.9995  # measured ~0.99999 on world sentences; int8 ONNX gives ~0.993
    assert np.abs(bf16.embed(TEXTS[::-1])[::-1] - got).max() < 1e-2  # order-free up to bf16 batching noise
    docs = ["Jane Roe runs Acme Corporation.", "The Eiffel Tower is in Paris.", "Lyra is a constellation."]
    queries = ["Who is the chief executive of Acme?", "Where is the Eiffel Tower?", "What is Lyra?"]
    assert list((bf16.embed(queries) @ bf16.embed(docs).T).argmax(axis=1)) == [0, 1, 2]


def test_bf16_on_a_device_without_it_is_refused_before_loading() -> None:
    with pytest.raises(EmbedderError, match="bfloat16"):
        PooledEncoder(default_model_dir(), device="meta", precision="bf16")
