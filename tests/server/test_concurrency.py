"""Reads do not wait behind asks; writes stay serialised (issues 16 and 30).

An ask batch is held inside the model (its model step waits on an event) while reads and a write arrive:
the reads answer at once, and so does the write (a tell that changes no weights does not wait for a model
call; the batch read memory and KG before it, under the read lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from agent.server._locks import ReadWriteLock
from tests.server.conftest import Served, key

H = {"Authorization": f"Bearer {key('alice')}"}


def test_reads_answer_while_asks_are_running_and_writes_wait(
    serve: Callable[..., AbstractContextManager[Served]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve() as s:
        fact = httpx.post(f"{s.url}/v1/facts", json={"text": "Concurrent facts are fine."}, headers=H).json()
        inside, gate = threading.Event(), threading.Event()
        original = s.agent.collector.run

        def held(*args: Any, **kwargs: Any) -> Any:
            inside.set()
            assert gate.wait(30)
            return original(*args, **kwargs)

        monkeypatch.setattr(s.agent.collector, "run", held)
        results: dict[str, Any] = {}

        def post(name: str, path: str, body: dict[str, str]) -> None:
            results[name] = httpx.post(f"{s.url}{path}", json=body, headers=H, timeout=60)

        asks = [
            threading.Thread(target=post, args=(f"ask{i}", "/v1/ask", {"question": "Who is the CEO of Nokia?"}))
            for i in range(3)
        ]
        for t in asks:
            t.start()
        try:
            assert inside.wait(30)
            for path in ("/v1/edits", "/v1/history?subject=Nokia", f"/v1/facts/{fact['id']}", "/v1/facts/search?q=x"):
                start = time.perf_counter()
                r = httpx.get(f"{s.url}{path}", headers=H, timeout=10)
                assert r.status_code == 200 and time.perf_counter() - start < 5, path
            tell = threading.Thread(
                target=post, args=("tell", "/v1/tell", {"statement": "The CEO of Lockstep Ltd is Ana Bell."})
            )
            tell.start()
            tell.join(10)
            assert "tell" in results and not any(f"ask{i}" in results for i in range(3))  # the asks are still held
        finally:
            gate.set()
        for t in [*asks, tell]:
            t.join(60)
        assert all(results[f"ask{i}"].status_code == 200 for i in range(3))
        assert results["tell"].status_code == 200 and results["tell"].json()["status"] == "applied"


def test_the_lock_prefers_a_waiting_writer() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first_in = threading.Event()

    def reader(name: str, hold: float) -> None:
        with lock.shared():
            first_in.set()
            order.append(f"{name}+")
            time.sleep(hold)
            order.append(f"{name}-")

    def writer() -> None:
        with lock.exclusive():
            order.append("w")

    r1 = threading.Thread(target=reader, args=("r1", 0.3))
    r1.start()
    assert first_in.wait(5)
    w = threading.Thread(target=writer)
    w.start()
    time.sleep(0.1)  # the writer is waiting now
    r2 = threading.Thread(target=reader, args=("r2", 0.0))
    r2.start()
    for t in (r1, w, r2):
        t.join(5)
    assert order.index("w") > order.index("r1-") and order.index("r2+") > order.index("w")
