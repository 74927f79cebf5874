"""A real ``oxigraph serve`` process on loopback for the remote-store tests (the ``oxigraph`` PyPI package).

The project's own ``tests/kg/sparql_server.py`` stays only for fault injection (slow answers, wrong paths,
request counting), which a real server cannot be made to do on demand.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class OxigraphServer:
    """One running server: its SPARQL query and update URLs and the process."""

    query_url: str
    update_url: str
    process: subprocess.Popen[bytes]


def oxigraph_binary() -> str:
    """The ``oxigraph`` CLI of this environment (skips the test when the engines extra is not installed)."""
    beside = Path(sys.executable).with_name("oxigraph")
    found = str(beside) if beside.exists() else shutil.which("oxigraph")
    if not found:
        pytest.skip("the oxigraph server is not installed (pip install '.[engines]')")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def oxigraph_server(
    location: Path | None = None, *, union_default_graph: bool = True, port: int | None = None, startup_s: float = 30
) -> Iterator[OxigraphServer]:
    """Start ``oxigraph serve`` on loopback (a free port unless given; in memory, or persisted at ``location``).

    ``startup_s``: how long it may take to answer (opening a large store can replay its write-ahead log).
    """
    port = port or _free_port()
    command = [oxigraph_binary(), "serve", "--bind", f"127.0.0.1:{port}"]
    if location is not None:
        command += ["--location", str(location)]
    if union_default_graph:
        command.append("--union-default-graph")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                urllib.request.urlopen(f"{base}/query?query=ASK%7B%7D", timeout=1).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # refused, or open but not answering
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read() if process.stderr else b""
                    raise RuntimeError(f"oxigraph serve did not start: {error!r}") from None
                time.sleep(0.05)
        yield OxigraphServer(query_url=f"{base}/query", update_url=f"{base}/update", process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
