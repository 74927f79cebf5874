"""A real OpenAI-compatible server on loopback: http.server answering ``POST /v1/chat/completions``.

As a judge it applies the rubric itself from the prompt's "Gold target" and "Predicted answer" lines
(normalised equality -> A, a refusal -> C, else B), so graders are tested over HTTP against a server that
judges. As an answering model it answers a prompt's "Question:" line from its ``knowledge`` table, else says
"I don't know". With ``fail_after`` set it drops every connection after that many requests.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eval._normalize import normalize_answer


@dataclass
class Judge:
    """The running server: its base URL, the request bodies it received, and its failure switch."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_after: int | None = None
    knowledge: dict[str, str] = field(default_factory=dict)  # question -> answer, for answering prompts


def _reply(prompt: str, knowledge: dict[str, str]) -> str:
    gold = re.search(r"^Gold target: (.*)$", prompt, re.MULTILINE)
    predicted = re.search(r"^Predicted answer: (.*)$", prompt, re.MULTILINE)
    if gold is None or predicted is None:
        question = re.search(r"^Question: (.*)$", prompt, re.MULTILINE)
        return knowledge.get(question.group(1).strip(), "I don't know.") if question else "?"
    answer = normalize_answer(predicted.group(1))
    if "dont know" in answer or not answer:
        return "C"
    targets = {normalize_answer(t) for t in gold.group(1).split(" / ")}
    return "A" if answer in targets else "B"


class _Handler(BaseHTTPRequestHandler):
    judge: Judge

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        judge = type(self).judge
        if judge.fail_after is not None and len(judge.requests) >= judge.fail_after:
            self.close_connection = True  # no response at all: the client sees the connection drop
            return
        judge.requests.append(body)
        if not self.path.endswith("/chat/completions"):
            self.send_error(404)
            return
        message = {"role": "assistant", "content": _reply(body["messages"][-1]["content"], judge.knowledge)}
        data = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


@contextmanager
def judge_server() -> Iterator[Judge]:
    """Serve on a free loopback port until the block ends."""
    judge = Judge()
    handler: Any = type("Handler", (_Handler,), {"judge": judge})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    judge.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield judge
    finally:
        server.shutdown()
        server.server_close()
