"""The LLM interpreter over a real HTTP round trip to a loopback /v1/chat/completions server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent.config import EndpointSettings, Settings, TellSettings
from agent.tell import LLMInterpreter, TellPipeline
from agent.wiring import WorkingMemory
from kg import load_schema
from memory import Triple
from tests.agent.tell.conftest import snapshot
from tools.errors import ConfigError, ContradictoryStatementError, InterpretationError
from tools.lm import OpenAIChatModel


class Replies:
    """What the fake model says next (one reply per request), and the prompts it was sent."""

    def __init__(self) -> None:
        self.queue: list[str] = []
        self.prompts: list[str] = []


@pytest.fixture
def endpoint() -> Iterator[tuple[str, Replies]]:
    replies = Replies()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            replies.prompts.append(body["messages"][-1]["content"])
            content = replies.queue.pop(0)
            data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", replies
    finally:
        server.shutdown()
        server.server_close()


def _interpreter(url: str) -> LLMInterpreter:
    return LLMInterpreter(OpenAIChatModel(url, model="fake", max_retries=0, logprobs=False), load_schema())


def _edit(*triples: tuple[str, str, str]) -> str:
    keys = ("subject", "relation", "object")
    return json.dumps({"kind": "edit", "triples": [dict(zip(keys, t, strict=True)) for t in triples]})


def test_valid_json_becomes_claims(endpoint: tuple[str, Replies]) -> None:
    url, replies = endpoint
    replies.queue += [_edit(("Acme Corp", "company_ceo", "Jane Roe")), '```json {"kind": "question"} ```']
    interpreter = _interpreter(url)
    result = interpreter.interpret("Jane Roe runs Acme Corp these days.")
    assert result.kind == "edit" and [c.triple for c in result.claims] == [
        Triple("Acme Corp", "company_ceo", "Jane Roe")
    ]
    assert "company_ceo (CEO)" in replies.prompts[0] and "Jane Roe runs Acme Corp" in replies.prompts[0]
    question = interpreter.interpret("Who runs Acme?")
    assert question.kind == "question" and question.questions == ("Who runs Acme?",)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("Sure! The CEO is Jane.", "not valid"),
        ('{"kind": "edit", "triples": []}', "no triples"),
        ('{"kind": "chitchat", "triples": [{"subject": "a", "relation": "spouse", "object": "b"}]}', "chitchat"),
        (_edit(("Acme", "favourite_colour", "blue")), "unknown relation 'favourite_colour'"),
        ('{"kind": "edit", "triples": [{"subject": "a", "relation": "spouse", "object": "b", "x": 1}]}', "not valid"),
        ('{"kind": "gossip"}', "not valid"),
    ],
)
def test_invalid_replies_are_typed_errors(endpoint: tuple[str, Replies], reply: str, message: str) -> None:
    url, replies = endpoint
    replies.queue.append(reply)
    with pytest.raises(InterpretationError, match=message):
        _interpreter(url).interpret("The CEO of Acme is Jane.")


def test_contradictory_triples(endpoint: tuple[str, Replies]) -> None:
    url, replies = endpoint
    replies.queue.append(_edit(("Acme", "company_ceo", "Jane"), ("Acme", "company_ceo", "Bob")))
    with pytest.raises(ContradictoryStatementError):
        _interpreter(url).interpret("Acme is run by Jane and by Bob.")


def test_pipeline_with_the_llm_interpreter_applies_nothing_on_bad_output(
    endpoint: tuple[str, Replies], wm: WorkingMemory
) -> None:
    url, replies = endpoint
    settings = Settings(
        endpoint=EndpointSettings(base_url=url, model="fake", max_retries=0), tell=TellSettings(interpreter="llm")
    )
    pipeline = TellPipeline.open(wm, settings)
    replies.queue += ['{"kind": "edit"', _edit(("Zeta Labs", "company_hq", "Oslo"))]
    before = snapshot(wm)
    with pytest.raises(InterpretationError):
        pipeline.tell("Zeta Labs moved its head office to Oslo.", user="alice")
    assert snapshot(wm) == before
    result = pipeline.tell("Zeta Labs moved its head office to Oslo.", user="alice")
    assert result.status == "applied" and [a.triple.object for a in wm.graph.facts("Zeta Labs", "company_hq")] == [
        "Oslo"
    ]
    with pytest.raises(ConfigError, match="endpoint"):
        TellPipeline.open(wm, Settings(tell=TellSettings(interpreter="llm")))
