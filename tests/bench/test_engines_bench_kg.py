"""The engines benchmark's KG table: every store warmed alike on keys of their own, the cold pass reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import engines_bench
from bench.engines_bench import QUERIES, draw_keys


def test_warm_up_keys_are_never_timed_keys() -> None:
    keys = draw_keys(n_entities=50, queries=40, warmup=40, seed=1)
    timed = {key for first, _, rest in keys.values() for bound in (first, *rest) for key in bound.values()}
    warm = {key for _, warm, _ in keys.values() for bound in warm for key in bound.values()}
    assert timed and warm  # 50 entities: collisions would be drawn if they were not skipped
    assert not timed & warm
    for name, (_, var, share) in QUERIES.items():
        first, warm_keys, rest = keys[name]
        assert len(rest) == max(3, int(share * 40))
        assert len(warm_keys) == max(1, int(share * 40))
        assert all(set(bound) == ({var} if var else set()) for bound in (first, *warm_keys, *rest))


def test_the_timed_keys_do_not_depend_on_the_warm_up() -> None:
    assert {name: (k[0], k[2]) for name, k in draw_keys(1000, 30, 0, 1).items()} == {
        name: (k[0], k[2]) for name, k in draw_keys(1000, 30, 100, 1).items()
    }
    assert all(not k[1] for k in draw_keys(1000, 30, 0, 1).values())


def test_too_few_entities_for_fresh_warm_up_keys_is_an_error() -> None:
    with pytest.raises(ValueError, match="warm-up"):
        draw_keys(n_entities=10, queries=100, warmup=10, seed=1)


def test_kg_rows_report_the_cold_pass_beside_the_timed_one(tmp_path: Path) -> None:
    rows = engines_bench.bench_kg(2000, 20, tmp_path, stores=("sqlite", "embedded"), warmup=20)
    assert [row["store"] for row in rows] == [
        "sqlite",
        "oxigraph (embedded)",
        "oxigraph (embedded, SPARQL engine only)",
    ]
    for row in rows:
        for name in QUERIES:
            assert isinstance(row[f"{name}_p50_ms"], float)
            assert isinstance(row[f"{name}_cold_p50_ms"], float)
            assert isinstance(row[f"{name}_cold_speedup"], float)
    assert "subject_cold_p50_ms" not in engines_bench.bench_kg(2000, 5, tmp_path / "none", stores=("sqlite",))[0]
