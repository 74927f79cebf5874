"""The official ``openai`` client talks to ``/v1/chat/completions`` as to any OpenAI-compatible server."""

from __future__ import annotations

import openai
import pytest

from tests.server.conftest import Served, key


def _client(server: Served, name: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key(name), max_retries=0, timeout=60)


def test_chat_tells_then_answers(server: Served) -> None:
    oa = _client(server, "alice")
    told = oa.chat.completions.create(
        model="factagent", messages=[{"role": "user", "content": "The CEO of Frobnitz Inc is Mara Quell."}]
    )
    assert told.object == "chat.completion" and "e-" in (told.choices[0].message.content or "")
    extra = told.model_extra or {}
    assert extra["factagent"]["mode"] == "tell" and extra["factagent"]["tell"]["status"] == "applied"
    reply = oa.chat.completions.create(
        model="factagent",
        messages=[
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Who is the CEO of Frobnitz Inc?"},
        ],
    )
    assert "Mara Quell" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert (
        reply.usage is not None
        and reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    )
    assert [m.id for m in oa.models.list()] == ["factagent"]
    follow = oa.chat.completions.create(  # "its" reads the earlier user message's subject
        model="factagent",
        messages=[
            {"role": "user", "content": "Who is the CEO of Frobnitz Inc?"},
            {"role": "assistant", "content": "Mara Quell."},
            {"role": "user", "content": "Who is its CEO?"},
        ],
    )
    assert "Mara Quell" in (follow.choices[0].message.content or "")


def test_readers_only_ask_and_streaming_works(server: Served) -> None:
    oa = _client(server, "rita")
    stream = oa.chat.completions.create(
        model="factagent", messages=[{"role": "user", "content": "The CEO of Frobnitz Inc is Bo Diddly."}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text  # a reader's statement is treated as a question, never an edit
    assert "e-" not in text


def test_openai_errors_are_typed(server: Served) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0).chat.completions.create(
            model="factagent", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.UnprocessableEntityError):
        _client(server, "alice").chat.completions.create(
            model="factagent", messages=[{"role": "assistant", "content": "x"}]
        )
