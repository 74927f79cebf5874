"""Everyday paths a client developer meets (issue 16, item 7): each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from agent import Agent
from agent.config import open_home
from agent.server._app import NO_WORLD, world_facts
from agent.wiring import open_working_memory
from tests.server.conftest import Served, key

ACME = "The CEO of Everyday Widgets is Jane Roe."


def _h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key(name)}"}


def test_served_answers_carry_their_latency(server: Served) -> None:
    body = httpx.post(
        f"{server.url}/v1/ask", json={"question": "Who is the CEO of Nowhere Ltd?"}, headers=_h("alice"), timeout=60
    ).json()
    assert body["latency_s"] > 0


def test_a_405_names_every_allowed_method(server: Served) -> None:
    r = httpx.post(f"{server.url}/v1/facts/m-0123456789abcdef", headers=_h("alice"))
    assert r.status_code == 405
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "PUT", "PATCH", "DELETE"}
    r = httpx.delete(f"{server.url}/v1/ask", headers=_h("alice"))
    assert r.status_code == 405 and r.headers["Allow"] == "POST"


def test_a_second_rollback_of_one_edit_is_a_conflict(server: Served) -> None:
    told = httpx.post(f"{server.url}/v1/tell", json={"statement": ACME}, headers=_h("alice"), timeout=60).json()
    url = f"{server.url}/v1/edits/{told['edit_id']}/rollback"
    assert httpx.post(url, headers=_h("alice"), timeout=60).status_code == 200
    again = httpx.post(url, headers=_h("alice"), timeout=60)
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"
    assert "already rolled back" in again.json()["error"]["message"]


def test_an_empty_patch_is_refused_as_the_schema_says(server: Served) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()["components"]["schemas"]["FactPatch"]
    assert schema["minProperties"] == 1 and schema["properties"]["text"]["type"] == "string"
    fact = httpx.post(f"{server.url}/v1/facts", json={"text": "Patchy is a cat."}, headers=_h("alice")).json()
    for body in ({}, {"text": None}):
        r = httpx.patch(f"{server.url}/v1/facts/{fact['id']}", json=body, headers=_h("alice"))
        assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request"
    ok = httpx.patch(f"{server.url}/v1/facts/{fact['id']}", json={"metadata": {"k": 1}}, headers=_h("alice"))
    assert ok.status_code == 200 and ok.json()["version"] == 2


def test_streamed_chunks_carry_the_factagent_field(server: Served) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key("rita"), max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model="factagent", messages=[{"role": "user", "content": "Who is the CEO of Nowhere Ltd?"}], stream=True
    )
    chunks = list(stream)
    assert chunks and all((c.model_extra or {}).get("factagent", {}).get("mode") == "ask" for c in chunks)


def test_models_retrieve_finds_the_served_model(server: Served) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key("rita"), max_retries=0, timeout=60)
    assert client.models.retrieve("factagent").id == "factagent"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_docs_are_served_without_a_cdn(server: Served) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200 and "cdn." not in page.text and "https://" not in page.text.split("<body>")[-1]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in page.text
        r = httpx.get(f"{server.url}/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
    assert json.loads(httpx.get(f"{server.url}/openapi.json").text)["info"]["title"] == "factagent"


def test_nul_and_bidi_controls_are_refused_on_every_write_path(server: Served) -> None:
    before = httpx.get(f"{server.url}/v1/edits", headers=_h("alice")).json()["edits"]
    for text in ("The CEO of Nul\x00Co is Jane Roe.", "The CEO of Bidi Co is \u202eeoR enaJ."):
        told = httpx.post(f"{server.url}/v1/tell", json={"statement": text}, headers=_h("alice"), timeout=60)
        assert told.status_code == 422 and "U+" in told.json()["error"]["message"]
        fact = httpx.post(f"{server.url}/v1/facts", json={"text": text}, headers=_h("alice"))
        assert fact.status_code == 422 and "U+" in fact.json()["error"]["message"]
        triple = {"subject": "Bidi\u202e Co", "relation": "company_ceo", "object": "Jane Roe"}
        with_triple = httpx.post(f"{server.url}/v1/facts", json={"text": "x", "triple": triple}, headers=_h("alice"))
        assert with_triple.status_code == 422
    assert httpx.get(f"{server.url}/v1/edits", headers=_h("alice")).json()["edits"] == before
    hits = httpx.get(f"{server.url}/v1/facts/search", params={"q": "Nul Co Bidi Co"}, headers=_h("alice")).json()
    assert not any("\x00" in h["fact"]["text"] or "\u202e" in h["fact"]["text"] for h in hits["hits"])


def test_a_fresh_home_is_told_to_load_the_world(server: Served, tmp_path: Path, minilm: Any, gpt2: Any) -> None:
    assert world_facts(server.agent) > 0  # the served home has the world loaded
    home = open_home(tmp_path / "fresh")
    fresh = Agent(open_working_memory(home, embedder=minilm), gpt2)
    try:
        assert world_facts(fresh) == 0
        assert "factagent memory load-world" in NO_WORLD
    finally:
        fresh.close()
