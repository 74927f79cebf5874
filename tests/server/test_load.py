"""Bounded load on loopback: concurrent clients, mixed requests, no lost edits; p50/p99 printed."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from bench.server_load import LoadReport, run_load
from tests.server.conftest import Served, key


def _run(serve: Callable[..., AbstractContextManager[Served]], clients: int, requests: int) -> LoadReport:
    with serve() as server:
        report = run_load(server.url, [key(f"load{i}") for i in range(clients)], clients, requests, seed=1)
    print(
        f"\nload {clients}x{requests}: {report.requests} requests, {report.throughput_rps:.1f}/s, "
        f"p50 {report.p50_ms:.1f} ms, p99 {report.p99_ms:.1f} ms, errors {report.errors}, lost {report.lost}"
    )
    assert report.requests == clients * requests
    assert report.errors == 0, report.error_samples
    assert report.lost == 0
    return report


def test_small_load_loses_nothing(serve: Callable[..., AbstractContextManager[Served]]) -> None:
    report = _run(serve, 4, 25)
    assert {"ask", "add", "search"} <= set(report.per_op)


@pytest.mark.slow
def test_load_8_clients_x_500(serve: Callable[..., AbstractContextManager[Served]]) -> None:
    _run(serve, 8, 500)
