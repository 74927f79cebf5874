"""The embedder benchmark's fidelity figures: recall against the reference's neighbours, cosines to it."""

from __future__ import annotations

import numpy as np

from bench.embedder_bench import fidelity, format_tables


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_identical_vectors_keep_every_neighbour_and_swapped_ones_lose_them() -> None:
    rng = np.random.default_rng(0)
    docs, queries = _unit(rng.standard_normal((50, 8))), _unit(rng.standard_normal((5, 8)))
    same = fidelity(docs, queries, docs.copy(), queries.copy(), 10)
    assert same == {"recall_at_10": 1.0, "cosine_mean": same["cosine_mean"], "cosine_min": same["cosine_min"]}
    assert abs(same["cosine_min"] - 1.0) < 1e-6
    flipped = fidelity(docs, queries, docs, -queries, 10)  # the farthest documents come first
    assert flipped["recall_at_10"] < 0.5


def test_tables_name_every_backend_with_its_ratio() -> None:
    result = {
        "throughput_per_s": {"auto": 100.0, "torch-bf16": 250.0},
        "throughput_per_cpu_s": {"auto": 50.0, "torch-bf16": 120.0},
        "ingest_per_s": {"factagent (torch-bf16)": 90.0, "langchain-faiss (auto)": 40.0},
        "ingest_ratio": 2.25,
    }
    quality = {"torch-bf16": {"recall_at_10": 0.995, "cosine_mean": 0.99999, "cosine_min": 0.9999}}
    text = format_tables(result, quality)
    assert "| torch-bf16 | 250 | 2.50x | 120 | 2.40x | 0.995 |" in text and "2.25x" in text
