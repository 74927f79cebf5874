"""Running an app under uvicorn in a background thread on loopback (tests, benchmarks, embedding)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tools.errors import EndpointTimeoutError

__all__ = ["free_port", "serve_in_thread"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int | None = None, start_timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL and stops it (gracefully) on exit.

    Raises:
        EndpointTimeoutError: the server did not start within ``start_timeout`` seconds.
    """
    import uvicorn

    chosen = port or free_port(host)
    config = uvicorn.Config(
        app, host=host, port=chosen, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn:{chosen}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise EndpointTimeoutError(f"uvicorn did not start on {host}:{chosen}")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{chosen}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
