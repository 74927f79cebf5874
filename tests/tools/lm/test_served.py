"""The served-model backend (``ServedLanguageModel``) against a real HTTP server on loopback.

The server is a ``ThreadingHTTPServer`` the test starts; each test scripts its replies (status, body, delay,
or a body trickled byte by byte), and the server records every request it received and how many were in
flight at once. The real third-party server (llama.cpp's) is exercised in ``tests/bench/test_inference_servers.py``.
"""

from __future__ import annotations

import json
import re
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
    EndpointStatusError,
    EndpointTimeoutError,
    EndpointUnreachableError,
    MalformedResponseError,
    UnsupportedSignalError,
)
from tools.lm import ServedLanguageModel


def completion(text: str, tops: dict[str, float] | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "stop"}
    if tops is not None:
        choice["logprobs"] = {"tokens": ["a"], "token_logprobs": [max(tops.values())], "top_logprobs": [tops]}
    return {"id": "c1", "object": "text_completion", "model": "m", "choices": [choice]}


def echo(prompt: str, tokens: list[str], logprobs: list[float | None]) -> dict[str, Any]:
    offsets, at = [], 0
    for tok in tokens:
        offsets.append(at)
        at += len(tok)
    assert "".join(tokens).startswith(prompt)
    lp = {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets, "top_logprobs": None}
    return {"choices": [{"index": 0, "text": "".join(tokens), "logprobs": lp}]}


Reply = tuple[int, Any, float, dict[str, str]]


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    peak: int = 0
    trickle: bool = False  # send the body one byte every 0.3 s
    delay: float = 0.0  # of the default reply
    tokenizer: bool = True  # answer tokenizer requests (a word-level fake, ids in order of first sight)
    vocab: dict[str, int] = field(default_factory=dict)

    def next(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(body)
            if "input" in body or "content" in body:  # /extras/tokenize (llama-cpp-python), /tokenize
                if not self.tokenizer:
                    return (404, {"detail": "Not Found"}, 0.0, {})
                words = re.findall(r"\s*\S+", body.get("input", body.get("content", "")))
                return (200, {"tokens": [self.vocab.setdefault(w, len(self.vocab)) for w in words]}, 0.0, {})
            if self.replies:
                return self.replies.pop(0)
        prompt = body.get("prompt", "")
        return (200, completion(" " + prompt[-6:].upper() + "\nmore", {" A": -0.1, " B": -2.5}), self.delay, {})


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.in_flight += 1
                script.peak = max(script.peak, script.in_flight)
            try:
                status, reply, delay, headers = script.next(body)
                time.sleep(delay)
                payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if script.trickle:
                    for i in range(len(payload)):
                        self.wfile.write(payload[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.3)
                else:
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)
            finally:
                with script.lock:
                    script.in_flight -= 1

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()


def served(url: str, **kw: Any) -> ServedLanguageModel:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 2.0)
    return ServedLanguageModel(url, "test-model", **kw)


class TestServedContract(LanguageModelContract):
    @pytest.fixture()
    def lm(self, server: tuple[str, Script]) -> ServedLanguageModel:
        return served(server[0])


def test_completion_request_and_first_token_confidence(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((200, completion("  Paris\nLyon", {" Paris": -0.1, " Lyon": -2.5}), 0.0, {}))
    gen = served(url, api_key="k").generate(["Q: Capital of France?\nA:"], max_new_tokens=7)[0]
    assert gen.text == "Paris"
    assert gen.first_token_prob == pytest.approx(0.904837, abs=1e-5)
    assert gen.margin == pytest.approx(0.904837 - 0.082085, abs=1e-5)
    body = script.requests[0]
    assert body["prompt"] == "Q: Capital of France?\nA:" and body["max_tokens"] == 7 and body["logprobs"] == 2
    assert body["stop"] == ["\n"]  # the server stops where the answer is cut


def test_texts_only_asks_for_no_logprobs_and_keeps_the_capability_unlearned(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((200, completion(" Paris\nLyon"), 0.0, {}))
    lm = served(url)
    (gen,) = lm.generate_texts(["Q: Capital of France?\nA:"], max_new_tokens=7)
    assert (gen.text, gen.first_token_prob) == ("Paris", None)
    assert "logprobs" not in script.requests[0] and lm.capabilities.logprobs is None  # not taken for "no logprobs"


def test_concurrent_but_bounded(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay = 0.3  # each reply names its prompt (arrival order is not prompt order)
    lm = served(url, max_concurrency=3)
    start = time.perf_counter()
    gens = lm.generate([f"p{i}" for i in range(8)])
    took = time.perf_counter() - start
    assert [g.text for g in gens] == [f"P{i}" for i in range(8)]  # in prompt order
    assert script.peak == 3  # never more than the bound in flight ...
    assert took < 8 * 0.3 * 0.7  # ... and not one after another
    assert lm.usage.requests == 8 and lm.usage.retries == 0


def test_no_logprobs_is_learned_and_not_asked_again(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [
        (400, {"error": {"message": "logprobs not supported"}}, 0.0, {}),
        (200, completion(" A"), 0.0, {}),
    ]
    lm = served(url)
    gen = lm.generate(["q"])[0]
    assert gen.text == "A" and gen.first_token_prob is None
    assert lm.capabilities.logprobs is False and "first_token_prob" not in lm.capabilities.signals()
    lm.generate(["q2"])
    assert "logprobs" not in script.requests[-1]


def test_score_from_echoed_prompt_logprobs(server: tuple[str, Script]) -> None:
    url, script = server
    tokens = ["Q:", " Who", "?", " Jane", " Roe", "\n"]
    script.replies += [  # the one-time check: the echo agrees with the completion's own log-probability
        (200, completion(" Jane", {" Jane": -0.5, " Bob": -2.0}), 0.0, {}),
        (200, echo("Q: Who?", [*tokens[:4], "\n"], [None, -1.0, -2.0, -0.52, -3.0]), 0.0, {}),
    ]
    script.replies.append((200, echo("Q: Who?", tokens, [None, -1.0, -2.0, -0.5, -0.25, -3.0]), 0.0, {}))
    lm = served(url)
    (sc,) = lm.score(["Q: Who?"], [" Jane Roe"])
    assert sc.n_tokens == 2 and sc.logprob == pytest.approx(-0.75)  # the generated token is not counted
    assert script.requests[-1]["echo"] is True and lm.capabilities.prompt_logprobs is True
    assert {"familiarity", "pmi"} <= set(lm.capabilities.signals())


def test_echo_that_disagrees_with_completions_is_not_used(server: tuple[str, Script]) -> None:
    url, script = server
    script.tokenizer = False  # and no teacher forcing to fall back on
    script.replies += [
        (200, completion(" Jane", {" Jane": -0.02}), 0.0, {}),
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -11.6, -3.0]), 0.0, {}),
    ]
    lm = served(url)
    with pytest.raises(UnsupportedSignalError, match="not usable"):
        lm.score(["Q: Who?"], [" Jane"])
    assert lm.capabilities.prompt_logprobs is False and len(script.requests) == 6  # + 2 texts x 2 tokenizer paths


def forced(token: str, logprob: float) -> dict[str, Any]:
    """A one-token completion as llama.cpp gives it under ``logit_bias``: the forced token, its raw logprob."""
    return forced_run([token], [logprob])


def forced_run(tokens: list[str], logprobs: list[float]) -> dict[str, Any]:
    """A completion of several tokens under ``logit_bias``: the tokens picked, their raw logprobs."""
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    lp = {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets, "top_logprobs": None}
    return {"choices": [{"index": 0, "text": "".join(tokens), "logprobs": lp, "finish_reason": "length"}]}


def test_score_by_teacher_forcing_when_the_echo_is_off_by_one(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [
        (200, completion(" Jane", {" Jane": -0.02, " Bob": -2.0}), 0.0, {}),  # the check's completion
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -11.6, -3.0]), 0.0, {}),
        (200, forced(" Bob", -2.04), 0.0, {}),  # the runner-up, forced: agrees with the completion's -2.0
        (200, forced_run([" Roe", " Jane"], [-9.0, -9.0]), 0.0, {}),  # both tokens at once: out of order ...
        (200, forced(" Jane", -0.5), 0.0, {}),  # ... so one at a time
        (200, forced(" Roe", -0.25), 0.0, {}),
    ]
    lm = served(url)
    (sc,) = lm.score(["Q: Who?"], [" Jane Roe"])
    assert sc.n_tokens == 2 and sc.logprob == pytest.approx(-0.75)
    assert lm.capabilities.scoring == "forced" and {"familiarity", "pmi"} <= set(lm.capabilities.signals())
    steps = [r for r in script.requests if "logit_bias" in r]
    # the probe, the whole continuation at once, then the prefix growing per token
    assert [r["prompt"] for r in steps] == ["Q: Who?", "Q: Who?", "Q: Who?", "Q: Who? Jane"]
    jane, roe = str(script.vocab[" Jane"]), str(script.vocab[" Roe"])
    assert [r["logit_bias"] for r in steps[1:]] == [{jane: 100.0, roe: 100.0}, {jane: 100.0}, {roe: 100.0}]
    assert [r["max_tokens"] for r in steps] == [1, 2, 1, 1]


def test_a_continuation_forced_in_one_request_when_its_tokens_come_in_order(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [
        (200, completion(" Jane", {" Jane": -0.02, " Bob": -2.0}), 0.0, {}),
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -11.6, -3.0]), 0.0, {}),
        (200, forced(" Bob", -2.04), 0.0, {}),
        (200, forced_run([" Jane", " Roe", " Jane"], [-0.5, -0.25, -1.0]), 0.0, {}),
    ]
    lm = served(url)
    (sc,) = lm.score(["Q: Who?"], [" Jane Roe Jane"])
    assert sc.n_tokens == 3 and sc.logprob == pytest.approx(-1.75)
    (step,) = [r for r in script.requests if "logit_bias" in r][1:]  # one request for the three tokens
    jane, roe = str(script.vocab[" Jane"]), str(script.vocab[" Roe"])
    assert step["max_tokens"] == 3 and step["logit_bias"] == {jane: 100.0, roe: 100.0}
    assert lm.usage.kinds()["forced"] == 2  # the probe's and this one


@pytest.mark.parametrize(
    ("steps", "ok"),
    [
        ([" Ann", "a Ann"], True),  # the continuation's own two tokens, in order
        ([" Ann", "a", " Ann"], False),  # three tokens for two: a different spelling
        ([" Annaa", "x"], False),  # does not spell the continuation
        ([" Ann", " Ann"], False),  # fewer distinct texts than distinct targets: some target never came
    ],
)
def test_a_multi_token_forcing_is_taken_only_when_it_is_the_targets(steps: list[str], ok: bool) -> None:
    from tools.lm._forced import _spelled_exactly

    assert _spelled_exactly([(t, -1.0) for t in steps], [7, 8], " Anna Ann") is ok


def test_two_spellings_from_the_same_tokens_are_not_taken() -> None:
    """Tokens "a" and "aa" spell "aaa" both as ("a", "aa") and ("aa", "a"): from their texts alone the
    generated order cannot be told to be the continuation's, so neither is taken (one request per token)."""
    from tools.lm._forced import _spelled_exactly

    assert not _spelled_exactly([("a", -1.0), ("aa", -1.0)], [1, 2], "aaa")
    assert not _spelled_exactly([("aa", -1.0), ("a", -1.0)], [2, 1], "aaa")
    assert _spelled_exactly([("a", -1.0), ("b", -1.0)], [1, 2], "ab")  # texts that cannot be confused


def test_token_ids_are_asked_once_per_text_and_requests_counted_by_kind(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [
        (200, completion(" Jane", {" Jane": -0.02, " Bob": -2.0}), 0.0, {}),
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -11.6, -3.0]), 0.0, {}),
        (200, forced(" Bob", -2.04), 0.0, {}),
        (200, forced(" Jane", -0.5), 0.0, {}),
        (200, forced(" Jane", -0.5), 0.0, {}),  # the same row again: its forced token is asked again ...
    ]
    lm = served(url)
    lm.score(["Q: Who?"], [" Jane"])
    tokenized = sum("input" in r for r in script.requests)
    assert lm.score(["Q: Who?"], [" Jane"])[0].logprob == pytest.approx(-0.5)
    assert sum("input" in r for r in script.requests) == tokenized  # ... but not its token ids
    kinds = lm.usage.kinds()
    assert kinds == {"generation": 1, "echo": 1, "forced": 3, "tokenize": tokenized}
    assert sum(kinds.values()) == lm.usage.requests == len(script.requests)


def test_forcing_without_a_tokenizer_endpoint_is_unsupported(server: tuple[str, Script]) -> None:
    url, script = server
    script.tokenizer = False
    script.replies += [
        (200, completion(" Jane", {" Jane": -0.02, " Bob": -2.0}), 0.0, {}),
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -11.6, -3.0]), 0.0, {}),
    ]
    lm = served(url)
    with pytest.raises(UnsupportedSignalError, match="not usable"):
        lm.score(["Q: Who?"], [" Jane"])
    assert lm.capabilities.prompt_logprobs is False and not any("logit_bias" in r for r in script.requests)


def test_forced_logprobs_that_carry_the_bias_are_not_used(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [
        (200, completion(" Jane", {" Jane": -0.02, " Bob": -2.0}), 0.0, {}),
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -11.6, -3.0]), 0.0, {}),
        (200, forced(" Bob", 0.0), 0.0, {}),  # a server that reports the biased distribution
    ]
    lm = served(url)
    with pytest.raises(UnsupportedSignalError):
        lm.score(["Q: Who?"], [" Jane"])
    assert lm.capabilities.prompt_logprobs is False


def test_score_unsupported_is_typed_and_remembered(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies.append((200, completion(" x"), 0.0, {}))  # echo ignored: no prompt log-probabilities
    lm = served(url)
    with pytest.raises(UnsupportedSignalError):
        lm.score(["a"], [" b"])
    n = len(script.requests)
    with pytest.raises(UnsupportedSignalError):
        lm.score(["a"], [" b"])
    assert len(script.requests) == n  # not asked again
    with pytest.raises(UnsupportedSignalError):
        served(url, api="chat").score(["a"], [" b"])


def test_429_and_5xx_storm_then_success(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [(429, {"error": {}}, 0.0, {"Retry-After": "0"}), (503, b"busy", 0.0, {}), (500, b"x", 0.0, {})]
    lm = served(url, max_retries=3)
    assert lm.generate(["q"])[0].text == "Q"
    assert lm.usage.requests == 4 and lm.usage.retries == 3


def test_5xx_storm_gives_a_typed_error(server: tuple[str, Script]) -> None:
    url, script = server
    script.replies += [(503, b"busy", 0.0, {})] * 10
    with pytest.raises(EndpointStatusError) as info:
        served(url, max_retries=2).generate(["q"])
    assert info.value.status_code == 503


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", json.dumps({"choices": []}).encode(), b"\xff\xfe"])
def test_malformed_json(server: tuple[str, Script], body: bytes) -> None:
    url, script = server
    script.replies.append((200, body, 0.0, {}))
    with pytest.raises(MalformedResponseError):
        served(url).generate(["q"])


def test_slow_stream_hits_the_deadline(server: tuple[str, Script]) -> None:
    url, script = server
    script.trickle = True  # each byte arrives within httpx's read timeout, the whole body never does
    lm = served(url, timeout=0.8, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(EndpointTimeoutError):
        lm.generate(["q"])
    assert time.perf_counter() - start < 2 * 0.8 + 1.0  # two attempts, each cut at the deadline


def test_server_down_is_typed_and_quick() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    start = time.perf_counter()
    with pytest.raises(EndpointUnreachableError):
        served(f"http://127.0.0.1:{port}/v1", max_retries=1).generate(["q"])
    assert time.perf_counter() - start < 2.0


def test_called_from_a_running_event_loop(server: tuple[str, Script]) -> None:
    import asyncio

    async def main() -> str:
        return served(server[0]).generate(["q"])[0].text

    assert asyncio.run(main()) == "Q"


def test_the_models_own_answer_is_scored_from_its_completion(server: tuple[str, Script]) -> None:
    url, script = server
    lp = {"tokens": [" Jane", " Roe", "\n"], "token_logprobs": [-0.5, -0.25, -1.0], "top_logprobs": None}
    generated = {"choices": [{"index": 0, "text": " Jane Roe\n", "logprobs": lp}]}
    script.replies += [
        (200, generated, 0.0, {}),
        (200, completion(" Jane", {" Jane": -0.5, " Bob": -2.0}), 0.0, {}),  # the one-time check ...
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Jane", "\n"], [None, -1.0, -2.0, -0.5, -3.0]), 0.0, {}),
    ]
    lm = served(url)
    assert lm.generate(["Q: Who?"])[0].text == "Jane Roe"
    (sc,) = lm.score(["Q: Who?"], [" Jane Roe"])
    assert sc.n_tokens == 2 and sc.logprob == pytest.approx(-0.75)
    assert len(script.requests) == 3  # ... and no request for the row: its tokens came with the answer
    script.replies.append(
        (200, echo("Q: Who?", ["Q:", " Who", "?", " Ja", "\n"], [None, -1.0, -2.0, -4.0, -1.0]), 0, {})
    )
    (other,) = lm.score(["Q: Who?"], [" Ja"])  # not the text of whole tokens of the answer: asked
    assert other.logprob == pytest.approx(-4.0) and len(script.requests) == 4


def test_the_tls_context_is_made_once_not_per_call(server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the CA bundle costs as much as a request to a local server: once per model, not per call."""
    import ssl

    made: list[int] = []
    original = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    lm = served(server[0])
    for _ in range(3):
        assert lm.generate(["q", "r"])[0].text == "Q"
    assert len(made) == 1
