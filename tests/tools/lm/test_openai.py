"""The OpenAI-compatible backend against a real HTTP server on loopback.

The server is a ``ThreadingHTTPServer`` started by the test; each test scripts its answers (status, body,
delay), and the server records every request body it received.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.tools.lm.contract import LanguageModelContract
from tools.errors import (
    BackendError,
    EndpointStatusError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    MalformedResponseError,
)
from tools.lm import OpenAIChatModel


def completion(text: str, logprobs: tuple[float, float] | None = (-0.1, -2.5)) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs:
        tops = [{"token": "a", "logprob": logprobs[0]}, {"token": "b", "logprob": logprobs[1]}]
        choice["logprobs"] = {"content": [{"token": "a", "logprob": logprobs[0], "top_logprobs": tops}]}
    return {"id": "c1", "object": "chat.completion", "model": "m", "choices": [choice]}


@dataclass
class Script:
    """What the server answers next: a list of (status, body or raw bytes, delay, headers)."""

    replies: list[tuple[int, Any, float, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, Any, float, dict[str, str]] = (200, None, 0.0, {})
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> tuple[int, Any, float, dict[str, str]]:
        with self.lock:
            return self.replies.pop(0) if self.replies else self.default


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            status, reply, delay, headers = script.next()
            if reply is None:  # echo the last user message back, upper-cased
                reply = completion(body["messages"][-1]["content"][-12:].upper() + "\nsecond line")
            time.sleep(delay)
            payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
            try:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()


def client(url: str, **kw: Any) -> OpenAIChatModel:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2.0)
    return OpenAIChatModel(url, model="test-model", **kw)


class TestOpenAIContract(LanguageModelContract):
    @pytest.fixture()
    def lm(self, server: tuple[str, Script]) -> Iterator[OpenAIChatModel]:
        with client(server[0]) as lm:
            yield lm


def test_request_shape_and_parsing(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((200, completion("  Paris  "), 0.0, {}))
    gen = client(url, api_key="sekret").generate(["Capital of France?"], max_new_tokens=7)[0]
    assert gen.text == "Paris"
    assert gen.first_token_prob == pytest.approx(0.904837, abs=1e-5)
    assert gen.margin == pytest.approx(0.904837 - 0.082085, abs=1e-5)
    req = script.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == "Bearer sekret"
    assert req["body"]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert req["body"]["temperature"] == 0 and req["body"]["max_tokens"] == 7


def test_cut_at_first_newline(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((200, completion("Paris\nand more"), 0.0, {}))
    assert client(url).generate(["q"])[0].text == "Paris"


def test_without_logprobs(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((200, completion("Paris", logprobs=None), 0.0, {}))
    gen = client(url).generate(["q"])[0]
    assert gen.text == "Paris" and gen.first_token_prob is None and gen.margin is None


def test_retries_429_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [
        (429, {"error": {"message": "slow down"}}, 0.0, {"Retry-After": "0"}),
        (503, {"error": {"message": "busy"}}, 0.0, {}),
    ]
    script.replies.append((200, completion("ok"), 0.0, {}))
    assert client(url, max_retries=3).generate(["q"])[0].text == "ok"
    assert len(script.requests) == 3


def test_gives_up_after_retries_on_5xx(server: tuple[str, Script]) -> None:
    url, script = server
    script.default = (500, {"error": {"message": "boom"}}, 0.0, {})
    with pytest.raises(EndpointStatusError, match="HTTP 500: boom") as info:
        client(url, max_retries=2).generate(["q"])
    assert info.value.status_code == 500
    assert len(script.requests) == 3


def test_client_error_is_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.default = (404, {"error": {"message": "no such model"}}, 0.0, {})
    with pytest.raises(EndpointStatusError, match="404") as info:
        client(url, max_retries=3).generate(["q"])
    assert info.value.status_code == 404
    assert len(script.requests) == 1


def test_400_on_logprobs_falls_back_once(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((400, {"error": {"message": "logprobs not supported"}}, 0.0, {}))
    lm = client(url)
    assert lm.generate(["abc"])[0].text == "ABC"
    assert "logprobs" in script.requests[0]["body"] and "logprobs" not in script.requests[1]["body"]
    lm.generate(["abc"])
    assert "logprobs" not in script.requests[2]["body"]


def test_timeout_after_retries(server: tuple[str, Script]) -> None:
    url, script = server
    script.default = (200, completion("late"), 1.0, {})
    started = time.time()
    with pytest.raises(EndpointTimeoutError, match="no answer after 2 attempts"):
        client(url, timeout=0.2, max_retries=1).generate(["q"])
    assert time.time() - started < 5


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b'{"choices": []}',
        b'{"no": "choices"}',
        b'{"choices": [{"message": {"content": 5}}]}',
        b"[1, 2]",
    ],
)
def test_malformed_bodies(server: tuple[str, Script], body: bytes) -> None:
    url, script = server
    script.default = (200, body, 0.0, {})
    with pytest.raises(MalformedResponseError):
        client(url).generate(["q"])


def test_unreachable_endpoint() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    with pytest.raises(EndpointUnreachableError, match="cannot reach"):
        client(f"http://127.0.0.1:{port}/v1", max_retries=1).generate(["q"])


def test_every_failure_is_a_backend_error() -> None:
    for cls in (EndpointStatusError, EndpointTimeoutError, EndpointUnreachableError, MalformedResponseError):
        assert issubclass(cls, BackendError)
