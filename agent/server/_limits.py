"""Limits on what one request and one key may cost: body size, per-key request rate, time, and counters.

- :class:`BodyLimit` (ASGI middleware): a body over ``max_bytes`` is refused with 413 before any route
  reads it, whether or not it announces its length;
- :class:`KeyRateLimiter`: a token bucket per API key (``requests_per_minute``; 429 with ``Retry-After``);
- :class:`Deadline` (ASGI middleware): a request still running after ``timeout_s`` gets 504;
- :class:`Metrics`: request counters and latency sums by route and status, and the agent's answering work
  (model and embedder batches per ask), as Prometheus text.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.server._errors import error_response

if TYPE_CHECKING:
    from agent._work import WorkCounts

__all__ = ["BodyLimit", "Deadline", "KeyRateLimiter", "Metrics"]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (the body is buffered, then replayed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error_response(413, f"request body over {self.max_bytes} bytes")
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # disconnected
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Deadline:
    """Answer 504 when a request runs longer than ``timeout_s`` (its worker thread finishes on its own)."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), self.timeout_s)
        except TimeoutError:
            if not started:
                await error_response(504, f"the request took longer than {self.timeout_s:g} s")(scope, receive, send)


class KeyRateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute on average, bursts up to ``per_minute``."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int | None = None) -> float | None:
        """Spend one token for ``key``; ``None`` if allowed, else the seconds to wait."""
        rate = self.per_minute if per_minute is None else per_minute
        if rate <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(rate), now))
            tokens = min(float(rate), tokens + (now - last) * rate / 60.0)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) * 60.0 / rate
            self._buckets[key] = (tokens - 1.0, now)
        return None


class Metrics:
    """Counters of requests by (method, route, status) and their summed latency, and what answering cost.

    Args:
        work: the agent's answering totals (:meth:`agent.Agent.work`): asks, micro-batches, model batches
            and prompts, embedder batches and texts; reported as totals and per ask. ``None``: not reported.
    """

    def __init__(self, work: Callable[[], WorkCounts] | None = None) -> None:
        self._work = work
        self._count: dict[tuple[str, str, int], int] = defaultdict(int)
        self._seconds: dict[tuple[str, str, int], float] = defaultdict(float)
        self._lock = threading.Lock()
        self.started = time.time()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._count[(method, route, status)] += 1
            self._seconds[(method, route, status)] += seconds

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                "requests": [
                    {"method": m, "route": r, "status": s, "count": n, "seconds": round(self._seconds[(m, r, s)], 6)}
                    for (m, r, s), n in sorted(self._count.items())
                ]
            }
        if self._work is not None:
            work = self._work()
            out["work"] = {**asdict(work), "per_ask": work.per_ask()}
        return out

    def prometheus(self) -> str:
        """The counters in the Prometheus text exposition format."""
        lines = [
            "# HELP factagent_requests_total HTTP requests by method, route and status.",
            "# TYPE factagent_requests_total counter",
        ]
        rows = self.snapshot()["requests"]
        for row in rows:
            labels = f'method="{row["method"]}",route="{row["route"]}",status="{row["status"]}"'
            lines.append(f"factagent_requests_total{{{labels}}} {row['count']}")
        lines += [
            "# HELP factagent_request_seconds_total Summed request latency by method, route and status.",
            "# TYPE factagent_request_seconds_total counter",
        ]
        for row in rows:
            labels = f'method="{row["method"]}",route="{row["route"]}",status="{row["status"]}"'
            lines.append(f"factagent_request_seconds_total{{{labels}}} {row['seconds']}")
        if self._work is not None:
            work = self._work()
            lines += [
                "# HELP factagent_work_total What answering cost: asks, micro-batches, model batches and prompts, "
                "embedder batches and texts.",
                "# TYPE factagent_work_total counter",
            ]
            lines += [f'factagent_work_total{{kind="{k}"}} {v}' for k, v in asdict(work).items()]
            lines += [
                "# HELP factagent_work_per_ask Each answering count divided by the asks so far.",
                "# TYPE factagent_work_per_ask gauge",
            ]
            lines += [f'factagent_work_per_ask{{kind="{k}"}} {v}' for k, v in work.per_ask().items()]
        lines += [
            "# HELP factagent_uptime_seconds Seconds since the server started.",
            "# TYPE factagent_uptime_seconds gauge",
            f"factagent_uptime_seconds {time.time() - self.started:.3f}",
        ]
        return "\n".join(lines) + "\n"
