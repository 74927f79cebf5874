"""The working-memory benchmark runs end to end at a tiny size and prints parseable rows."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench._data import derived_vectors, exact_top_k, fact_sentences, query_texts, recall_at_k
from bench.memory_bench import REQUIRED_KEYS, main
from tests.conftest import REPO


class HashEmbedder:
    """Deterministic unit vectors from a hash of the text: fast, no model."""

    dimension = 16

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = [
            np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")).standard_normal(16)
            for t in texts
        ]
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), 16)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(autouse=True)
def _bench_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # main() sets these for the peers; monkeypatch restores them afterwards.
    monkeypatch.setenv("MEM0_TELEMETRY", "False")
    monkeypatch.setenv("MEM0_DIR", str(tmp_path_factory.mktemp("mem0")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_rows_at_tiny_size(tmp_path: Path) -> None:
    out = io.StringIO()
    argv = ["--items", "300", "--systems", "factagent", "--queries", "20", "--json", "--no-progress"]
    assert main([*argv, "--workdir", str(tmp_path)], embedder=HashEmbedder(), out=out) == 0
    rows = _rows(out.getvalue())
    assert [r["system"] for r in rows] == ["raw-embedder", "factagent"]
    for row in rows:
        assert set(REQUIRED_KEYS) <= row.keys()
        assert row["items"] == 300
        assert 0 < row["query_p50_ms"] <= row["query_p99_ms"]
        assert row["ingest_per_s"] > 0
    factagent = rows[1]
    assert factagent["recall_at_10"] == 1.0  # exact search at 300 items over the same vectors
    assert factagent["ingest_vs_raw"] > 0
    assert list(tmp_path.iterdir()) == []  # temp stores removed


def test_precomputed_size_skips_mem0_with_a_reason(tmp_path: Path) -> None:
    out = io.StringIO()
    argv = ["--items", "400", "--precompute-above", "300", "--base-size", "200", "--systems", "factagent,mem0"]
    argv += ["--queries", "10", "--json", "--no-progress", "--workdir", str(tmp_path)]
    assert main(argv, embedder=HashEmbedder(), out=out) == 0
    rows = {r["system"]: r for r in _rows(out.getvalue())}
    assert rows["factagent"]["vectors"] == "precomputed"
    assert rows["factagent"]["recall_at_10"] >= 0.9
    assert rows["mem0"]["skipped"] is True and rows["mem0"]["ingest_per_s"] is None
    assert "always embeds" in rows["mem0"]["note"]


def test_sentences_are_distinct_and_prefix_stable() -> None:
    big = fact_sentences(5000)
    assert len(set(big)) == 5000
    assert fact_sentences(1000) == big[:1000]
    assert len(set(query_texts(50))) == 50


def test_derived_vectors_and_exact_neighbours() -> None:
    base = HashEmbedder().embed([f"s{i}" for i in range(100)])
    vectors = derived_vectors(base, 1000)
    assert np.allclose(vectors[:100], base)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    queries = HashEmbedder().embed(["q1", "q2", "q3"])
    truth = exact_top_k(vectors, queries, 10)
    assert (truth == np.argsort(-(queries @ vectors.T), axis=1)[:, :10]).all()
    assert recall_at_k(truth.tolist(), truth, 10) == 1.0
    assert recall_at_k([row[:5] for row in truth.tolist()], truth, 10) == 0.5


@pytest.mark.slow
def test_script_with_real_embedder() -> None:
    cmd = [sys.executable, "bench/memory_bench.py", "--items", "300", "--systems", "factagent", "--queries", "20"]
    done = subprocess.run([*cmd, "--json", "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert [r["system"] for r in rows] == ["raw-embedder", "factagent"]
    assert rows[1]["recall_at_10"] >= 0.99
    assert "target ingest" in done.stderr  # the human table went to stderr
