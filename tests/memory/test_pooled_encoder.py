"""The fast MiniLM path (transformers alone) gives sentence-transformers' vectors (issue 16, item 8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memory import SentenceTransformerEmbedder, default_model_dir
from memory._pooled_encoder import PooledEncoder

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
