"""The security suite: every route tried with other tenants', readers' and untrusted users' keys.

alice keeps a private fact; bob (another tenant), rita (a reader), mallory (an untrusted user) and nova (a
key whose own namespace is empty) try every route of the API on it. Counted over the whole suite: 0
cross-tenant reads (alice's private value, ids or name in any response), 0 cross-tenant writes (alice's
facts, edits and answers unchanged) and 0 trust bypasses (no contradiction of a trusted fact applied).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent import Agent, PolicyThresholds
from agent.config import open_home
from agent.server import ApiKey, KeyRing, Principal
from agent.server._app import create_app, service_settings
from agent.server._live import serve_in_thread
from agent.server._mcp import build_mcp_server
from agent.server._service import Service
from agent.tell import TellPipeline
from agent.wiring import open_working_memory
from eval.world import World
from kg import WORLD_NAMESPACE

KEYS = {
    "alice": ApiKey(key="key-alice-0001", user="alice", role="editor", namespaces=("alice",), shared=("world",)),
    "bob": ApiKey(key="key-bob-000002", user="bob", role="editor", namespaces=("bob",), shared=("world",)),
    "rita": ApiKey(key="key-rita-00003", user="rita", role="reader", namespaces=("rita",), shared=("world",)),
    "mallory": ApiKey(key="key-mallory-04", user="mallory", role="editor", namespaces=("mallory",), shared=("world",)),
    "nova": ApiKey(key="key-nova-00005", user="nova", role="editor", namespaces=("nova",), shared=("world",)),
    "root": ApiKey(
        key="key-root-00006",
        user="root",
        role="admin",
        namespaces=("admin",),
        shared_write=("alice", "mallory"),
        shared=("world",),
    ),
}
CONFIG = """
[tell]
edits_per_minute = 0
roles = { mallory = "untrusted" }

[server]
requests_per_minute = 0
"""
PRIVATE = "Ann Private"
ATTACKERS = ("bob", "rita", "mallory", "nova")
MISSING_FACT = "m-00000000000000ff"


def h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name].key}"}


@dataclass
class Site:
    url: str
    agent: Agent
    http: httpx.Client
    service: Service
    alice_fact: str = ""
    alice_edit: str = ""
    secrets: list[str] = field(default_factory=list)  # what must never reach another tenant
    leaks: list[str] = field(default_factory=list)

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request as ``who``; any of alice's secrets in the answer to another key is counted as a leak."""
        response = self.http.request(method, self.url + path, headers=h(who), **kwargs)
        if who not in ("alice", "root"):
            self.leaks += [f"{who} {method} {path}: {s}" for s in self.secrets if s in response.text]
        return response


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, loaded_home: Path, minilm: Any, gpt2: Any) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("tenancy") / "home"
    shutil.copytree(loaded_home, root)
    (root / "config.toml").write_text(CONFIG, encoding="utf-8")
    home = open_home(root)
    ring = KeyRing(KEYS.values())
    wm = open_working_memory(home, embedder=minilm)
    wm.refresh_entities()
    agent = Agent(
        wm, gpt2, thresholds=PolicyThresholds(), tell=TellPipeline.open(wm, service_settings(home.settings, ring.users))
    )
    try:
        app = create_app(home, agent=agent, keys=ring)
        with serve_in_thread(app) as url, httpx.Client(timeout=120) as http:
            s = Site(url, agent, http, app.state.factagent.service)
            told = s.call("alice", "POST", "/v1/tell", json={"statement": f"The CEO of Hiddenco is {PRIVATE}."})
            assert told.status_code == 200 and told.json()["status"] == "applied", told.text
            fact = s.call("alice", "POST", "/v1/facts", json={"text": "Hiddenco's vault code is 4411-private."})
            assert fact.status_code == 201, fact.text
            s.alice_edit, s.alice_fact = told.json()["edit_id"], fact.json()["id"]
            s.secrets = [PRIVATE, "4411-private", s.alice_edit, s.alice_fact, "user:alice"]
            yield s
    finally:
        agent.close()


def _alice_state(s: Site) -> tuple[Any, ...]:
    answer = s.call("alice", "POST", "/v1/ask", json={"question": "Who is the CEO of Hiddenco?"}).json()
    edits = s.call("alice", "GET", "/v1/edits").json()["edits"]
    fact = s.call("alice", "GET", f"/v1/facts/{s.alice_fact}").json()
    return answer["text"], [(e["edit_id"], e["status"]) for e in edits], fact["text"], fact["version"]


# -- item 2: the knowledge graph is namespaced -----------------------------------------------------------


def test_another_tenants_tell_neither_replaces_nor_quotes_a_private_fact(site: Site) -> None:
    before = _alice_state(site)
    assert before[0] == PRIVATE
    told = site.call("bob", "POST", "/v1/tell", json={"statement": "The CEO of Hiddenco is Bob Pick."})
    assert told.status_code == 200 and told.json()["status"] == "applied" and told.json()["superseded"] == []
    asked = site.call("bob", "POST", "/v1/ask", json={"question": "Who is the CEO of Hiddenco?"}).json()
    assert asked["text"] == "Bob Pick"
    history = site.call("bob", "GET", "/v1/history", params={"subject": "Hiddenco"}).json()["edits"]
    assert {e["who"] for e in history} == {"user:bob"}
    assert _alice_state(site) == before  # her answer is still hers
    undone = site.call("bob", "POST", f"/v1/edits/{told.json()['edit_id']}/rollback")
    assert undone.status_code == 200
    assert site.leaks == []


def test_a_name_one_tenant_wrote_never_links_for_another(site: Site) -> None:
    """Entity names are namespaced too: alice's spelling of a name links for her only (gap 1 of issue 16)."""
    told = site.call("alice", "POST", "/v1/tell", json={"statement": "The CEO of QuuxCorp is Ann Private."})
    assert told.status_code == 200 and told.json()["status"] == "applied", told.text
    site.secrets.append("QuuxCorp")  # her spelling: bob writes "quuxcorp"
    ask = {"question": "Who is the CEO of quuxcorp?"}
    try:
        for who in ("bob", "nova"):
            site.call(who, "POST", "/v1/ask", json={"question": "Who is the CEO of quuxcorp?"})
            site.call(who, "POST", "/v1/chat/completions", json=_chat("Who is the CEO of quuxcorp?"))
            site.call(who, "GET", "/v1/history", params={"subject": "quuxcorp"})
        bob = build_mcp_server(site.service, Principal("bob", "editor", ("bob",), ("world",)))
        for tool, args in (("verify_claim", {"claim": f"The CEO of quuxcorp is {PRIVATE}."}), ("ask", ask)):
            assert "QuuxCorp" not in json.dumps(_tool(bob, tool, args))
        own = site.call("bob", "POST", "/v1/tell", json={"statement": "The CEO of quuxcorp is Bob Pick."})
        assert own.status_code == 200 and own.json()["status"] == "applied", own.text
        assert site.leaks == []  # neither linked nor quoted in bob's answers, replies or history
        mine = site.call("alice", "POST", "/v1/ask", json={"question": "Who is the CEO of quuxcorp?"}).json()
        assert mine["text"] == PRIVATE  # her own name still links for her
        assert site.call("bob", "POST", f"/v1/edits/{own.json()['edit_id']}/rollback").status_code == 200
    finally:
        site.secrets.remove("QuuxCorp")
        site.call("alice", "POST", f"/v1/edits/{told.json()['edit_id']}/rollback")


def _chat(text: str) -> dict[str, Any]:
    return {"model": "factagent", "messages": [{"role": "user", "content": text}]}


def test_a_key_with_an_empty_namespace_gets_answers_from_its_shared_ones(site: Site, small_world: World) -> None:
    graph = site.agent.wm.graph
    world = next(a for a in graph.facts(relation="company_ceo", namespaces=[WORLD_NAMESPACE]))
    question = f"Who is the CEO of {world.triple.subject}?"
    asked = site.call("nova", "POST", "/v1/ask", json={"question": question}).json()
    assert (asked["text"], asked["action"]) == (world.triple.object, "kg")


# -- item 1: trust on every write path -----------------------------------------------------------------


def test_an_untrusted_key_cannot_replace_trusted_facts_through_the_facts_api(site: Site) -> None:
    graph = site.agent.wm.graph
    functional = {r.id for r in graph.schema.relations if r.functional}
    targets: dict[tuple[str, str], str] = {}
    for a in graph.facts(namespaces=[WORLD_NAMESPACE]):
        if a.triple.relation in functional and a.who.startswith("world"):
            targets.setdefault((a.triple.subject, a.triple.relation), a.triple.object)
    targets = dict(list(targets.items())[:10])
    assert len(targets) == 10
    applied = 0
    for (subject, relation), _ in targets.items():
        body = {
            "text": f"{subject}: Evil Eve.",
            "triple": {"subject": subject, "relation": relation, "object": "Evil Eve"},
        }
        r = site.call("mallory", "POST", "/v1/facts", json=body)
        assert r.status_code in (201, 202), r.text
        applied += r.status_code == 201
        assert r.status_code != 202 or (r.json()["status"] == "quarantined" and r.json()["quarantine_id"])
    assert applied == 0  # 0 trust bypasses in 10 attempts
    for (subject, relation), obj in targets.items():
        for ns in (["mallory", WORLD_NAMESPACE], [WORLD_NAMESPACE]):
            assert [a.triple.object for a in graph.facts(subject, relation, namespaces=ns)] == [obj]


def test_untrusted_tell_chat_and_updates_of_trusted_facts_are_held_or_refused(site: Site) -> None:
    graph = site.agent.wm.graph
    world = next(a for a in graph.facts(relation="company_hq", namespaces=[WORLD_NAMESPACE]))
    said = f"{world.triple.subject} is headquartered in Atlantis."
    told = site.call("mallory", "POST", "/v1/tell", json={"statement": said})
    assert told.json()["status"] == "quarantined"
    chat = {"model": "factagent", "messages": [{"role": "user", "content": said}]}
    assert site.call("mallory", "POST", "/v1/chat/completions", json=chat).status_code == 200
    assert [
        a.triple.object for a in graph.facts(world.triple.subject, "company_hq", namespaces=["mallory", "world"])
    ] == [world.triple.object]
    posted = site.call("root", "POST", "/v1/facts", json={"text": "The audit is due in May.", "namespace": "mallory"})
    assert posted.status_code == 201  # an admin's (trusted) fact in mallory's namespace
    fact = posted.json()["id"]
    for method in ("PATCH", "PUT", "DELETE"):
        body = {"json": {"text": "The audit was cancelled."}} if method != "DELETE" else {}
        assert site.call("mallory", method, f"/v1/facts/{fact}", **body).status_code == 403
    assert site.call("mallory", "GET", f"/v1/facts/{fact}").json()["text"] == "The audit is due in May."


def test_updating_a_facts_triple_goes_through_the_controller_and_rolls_back(site: Site) -> None:
    graph = site.agent.wm.graph
    triple = {"subject": "Patchco", "relation": "company_ceo", "object": "Old Boss"}
    posted = site.call("alice", "POST", "/v1/facts", json={"text": "The CEO of Patchco is Old Boss.", "triple": triple})
    assert posted.status_code == 201, posted.text
    fact = posted.json()["id"]
    body = {"text": "The CEO of Patchco is New Boss.", "triple": {**triple, "object": "New Boss"}}
    patched = site.call("alice", "PATCH", f"/v1/facts/{fact}", json=body)
    assert patched.status_code == 200 and patched.json()["version"] == 2, patched.text
    assert [a.triple.object for a in graph.facts("Patchco", "company_ceo", namespaces=["alice"])] == ["New Boss"]
    edit = site.agent.wm.memory.history(fact)[-1].edit_id
    logged = {e["edit_id"]: e for e in site.call("alice", "GET", "/v1/edits").json()["edits"]}
    assert edit in logged and logged[edit]["triples"] == [{**triple, "object": "New Boss"}]
    assert site.call("alice", "POST", f"/v1/edits/{edit}/rollback").status_code == 200
    assert [a.triple.object for a in graph.facts("Patchco", "company_ceo", namespaces=["alice"])] == ["Old Boss"]
    assert site.call("alice", "GET", f"/v1/facts/{fact}").json()["text"] == "The CEO of Patchco is Old Boss."
    # an untrusted key's update of its own fact into a contradiction of a world fact is held
    world = next(a for a in graph.facts(relation="company_ceo", namespaces=[WORLD_NAMESPACE]))
    own = site.call("mallory", "POST", "/v1/facts", json={"text": "A note of mine."}).json()["id"]
    evil = {"text": "Evil Eve runs it.", "triple": {**triple, "subject": world.triple.subject, "object": "Evil Eve"}}
    held = site.call("mallory", "PUT", f"/v1/facts/{own}", json=evil)
    assert held.status_code == 202 and held.json()["status"] == "quarantined", held.text
    seen = graph.facts(world.triple.subject, "company_ceo", namespaces=["mallory", WORLD_NAMESPACE])
    assert [a.triple.object for a in seen] == [world.triple.object]
    assert site.call("mallory", "GET", f"/v1/facts/{own}").json()["text"] == "A note of mine."


# -- item 3: no existence oracle -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_another_tenants_fact_and_a_missing_one_get_byte_identical_404s(site: Site, method: str) -> None:
    body = {"json": {"text": "overwritten"}} if method in ("PUT", "PATCH") else {}
    for who in ATTACKERS:
        other = site.call(who, method, f"/v1/facts/{site.alice_fact}", **body)
        missing = site.call(who, method, f"/v1/facts/{MISSING_FACT}", **body)
        assert other.status_code == missing.status_code == 404
        assert other.content == missing.content


def test_another_tenants_edit_and_a_missing_one_get_byte_identical_404s(site: Site) -> None:
    for who in ATTACKERS:
        other = site.call(who, "GET", f"/v1/edits/{site.alice_edit}/triples")
        missing = site.call(who, "GET", f"/v1/edits/{site.alice_edit[:-2]}00/triples")
        assert other.status_code == missing.status_code == 404 and other.content == missing.content


def test_rolling_back_another_users_edit_is_403_whether_or_not_it_exists(site: Site) -> None:
    for who in ATTACKERS:
        other = site.call(who, "POST", f"/v1/edits/{site.alice_edit}/rollback")
        missing = site.call(who, "POST", "/v1/edits/e-00000000/rollback")
        assert other.status_code == missing.status_code == 403
        assert other.content == missing.content


# -- item 4: quarantine review -------------------------------------------------------------------------


def test_admins_list_accept_and_reject_held_statements_over_rest(site: Site) -> None:
    graph = site.agent.wm.graph
    worlds = [a for a in graph.facts(relation="company_ceo", namespaces=[WORLD_NAMESPACE])][-2:]
    ids = []
    for a in worlds:
        told = site.call(
            "mallory", "POST", "/v1/tell", json={"statement": f"The CEO of {a.triple.subject} is Mal Ory."}
        )
        assert told.json()["status"] == "quarantined"
        ids.append(told.json()["quarantine_id"])
    for who in (*ATTACKERS, "alice"):
        assert site.call(who, "GET", "/v1/quarantine").status_code == 403
        assert site.call(who, "POST", f"/v1/quarantine/{ids[0]}/accept").status_code == 403
    listed = {q["id"]: q for q in site.call("root", "GET", "/v1/quarantine").json()["items"]}
    held = listed[ids[0]]
    assert held["user"] == "mallory" and held["namespace"] == "mallory" and held["created_at"]
    assert "contradicts the trusted fact" in held["reason"] and worlds[0].triple.object in held["reason"]
    accepted = site.call("root", "POST", f"/v1/quarantine/{ids[0]}/accept").json()
    assert accepted["item"]["status"] == "approved" and accepted["applied"]["status"] == "applied"
    subject = worlds[0].triple.subject
    assert [a.triple.object for a in graph.facts(subject, "company_ceo", namespaces=["mallory", "world"])] == [
        "Mal Ory"
    ]
    assert [a.triple.object for a in graph.facts(subject, "company_ceo", namespaces=["alice", "world"])] == [
        worlds[0].triple.object
    ]  # applied in mallory's namespace only
    rejected = site.call("root", "POST", f"/v1/quarantine/{ids[1]}/reject").json()
    assert rejected["item"]["status"] == "rejected" and rejected["applied"] is None
    again = site.call("root", "POST", f"/v1/quarantine/{ids[1]}/accept")
    assert again.status_code == 422
    assert site.call("root", "POST", "/v1/quarantine/q-00000000/reject").status_code == 404


def _tool(server: Any, name: str, arguments: dict[str, Any]) -> Any:
    """The tool's JSON result, or its error message (a tool error, as MCP clients see it)."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        result = asyncio.run(server.call_tool(name, arguments))
    except ToolError as exc:
        return str(exc)
    return json.loads(result.content[0].text)


def test_accepting_a_held_fact_keeps_the_metadata_posted_with_it(site: Site) -> None:
    hqs = site.agent.wm.graph.facts(relation="company_hq", namespaces=[WORLD_NAMESPACE])
    world = hqs[-2]  # [0] and [-1] are the targets of other tests
    t = world.triple
    text = f"{t.subject} is headquartered in Metaville."
    body = {
        "text": text,
        "triple": {"subject": t.subject, "relation": "company_hq", "object": "Metaville"},
        "metadata": {"ticket": "T-99", "score": 2},
    }
    held = site.call("mallory", "POST", "/v1/facts", json=body)
    assert held.status_code == 202, held.text
    item = held.json()["quarantine_id"]
    listed = {q["id"]: q for q in site.call("root", "GET", "/v1/quarantine").json()["items"]}
    assert listed[item]["metadata"] == {"ticket": "T-99", "score": 2}
    accepted = site.call("root", "POST", f"/v1/quarantine/{item}/accept").json()
    assert accepted["applied"]["status"] == "applied"
    params = {"q": text, "namespace": "mallory", "k": 20}
    hits = site.call("mallory", "GET", "/v1/facts/search", params=params).json()["hits"]
    [fact] = [h["fact"] for h in hits if h["fact"]["text"] == text]
    assert fact["metadata"]["ticket"] == "T-99" and fact["metadata"]["score"] == 2


def test_admins_review_held_statements_over_mcp(site: Site) -> None:
    graph = site.agent.wm.graph
    world = [a for a in graph.facts(relation="company_hq", namespaces=[WORLD_NAMESPACE])][-1]
    said = f"{world.triple.subject} is headquartered in Mordor."
    held = site.call("mallory", "POST", "/v1/tell", json={"statement": said}).json()["quarantine_id"]
    admin = build_mcp_server(site.service, Principal("root", "admin", ("admin",), ("world",)))
    editor = build_mcp_server(site.service, Principal("bob", "editor", ("bob",), ("world",)))
    assert {t.name for t in asyncio.run(editor.list_tools())} >= {"ask", "remember"}
    assert not {"quarantine", "review"} & {t.name for t in asyncio.run(editor.list_tools())}
    listed = {q["id"]: q for q in _tool(admin, "quarantine", {})}
    assert listed[held]["user"] == "mallory" and world.triple.object in listed[held]["reason"]
    done = _tool(admin, "review", {"item_id": held, "accept": False})
    assert done["item"]["status"] == "rejected" and done["applied"] is None
    assert "already rejected" in _tool(admin, "review", {"item_id": held, "accept": True})


# -- every route ---------------------------------------------------------------------------------------


def _attacks(s: Site) -> list[tuple[str, str, dict[str, Any], set[int]]]:
    """(method, path, request kwargs, allowed statuses) for each route, aimed at alice's namespace or data."""
    ask = {"question": "Who is the CEO of Hiddenco?"}
    chat = {"model": "factagent", "messages": [{"role": "user", "content": ask["question"]}]}
    return [
        ("POST", "/v1/ask", {"json": {**ask, "namespace": "alice"}}, {403}),
        ("POST", "/v1/ask", {"json": ask}, {200}),
        ("POST", "/v1/tell", {"json": {"statement": "The CEO of Hiddenco is Eve.", "namespace": "alice"}}, {403}),
        ("GET", "/v1/edits", {"params": {"namespace": "alice"}}, {403}),
        ("GET", "/v1/edits", {}, {200}),
        ("POST", f"/v1/edits/{s.alice_edit}/rollback", {}, {403}),
        ("GET", f"/v1/edits/{s.alice_edit}/triples", {}, {404}),
        ("GET", "/v1/history", {"params": {"subject": "Hiddenco"}}, {200}),
        ("POST", "/v1/facts", {"json": {"text": "x is y", "namespace": "alice"}}, {403}),
        ("GET", "/v1/facts/search", {"params": {"q": "Hiddenco vault code", "namespace": "alice"}}, {403}),
        ("GET", "/v1/facts/search", {"params": {"q": "Hiddenco vault code"}}, {200}),
        ("GET", f"/v1/facts/{s.alice_fact}", {}, {404}),
        ("PUT", f"/v1/facts/{s.alice_fact}", {"json": {"text": "gone"}}, {404}),
        ("PATCH", f"/v1/facts/{s.alice_fact}", {"json": {"text": "gone"}}, {404}),
        ("DELETE", f"/v1/facts/{s.alice_fact}", {}, {404}),
        ("GET", "/v1/quarantine", {}, {403}),
        ("POST", "/v1/quarantine/q-00000000/accept", {}, {403}),
        ("POST", "/v1/quarantine/q-00000000/reject", {}, {403}),
        ("POST", "/v1/chat/completions", {"json": chat}, {200}),
        ("POST", "/v1/chat/completions", {"json": {**chat, "namespace": "alice"}}, {403}),
        ("GET", "/v1/models", {}, {200}),
        ("GET", "/v1/models/factagent", {}, {200}),
        ("GET", "/v1/metrics", {}, {200}),
        ("GET", "/v1/health", {}, {200}),
        ("POST", "/v1/audits", {"json": {"setups": ["standalone"], "limit": 1}}, {202, 403, 422}),
        ("GET", "/v1/audits/a-000000000000", {}, {404}),
        ("POST", "/v1/admin/detox", {"json": {"adversarial_input": "x", "safe_response": "No."}}, {403}),
        ("POST", "/v1/admin/detox/x-000000000000/rollback", {}, {403}),
    ]  # fmt: skip


def test_every_route_with_every_other_key_leaks_and_changes_nothing(site: Site) -> None:
    before = _alice_state(site)
    attacks = _attacks(site)
    paths = {
        (method.upper(), path)
        for path, ops in site.http.get(site.url + "/openapi.json").json()["paths"].items()
        for method in ops
    }
    tried = {(m, p) for m, p, _, _ in attacks}
    normalised = {(m, p.replace(site.alice_edit, "{edit_id}").replace(site.alice_fact, "{fact_id}")) for m, p in tried}
    normalised = {
        (m, p.replace("q-00000000", "{item_id}").replace("a-000000000000", "{job_id}")) for m, p in normalised
    }
    normalised = {(m, p.replace("x-000000000000", "{edit_id}")) for m, p in normalised}
    normalised = {(m, "/v1/models/{model_id}" if p == "/v1/models/factagent" else p) for m, p in normalised}
    assert paths <= normalised, f"routes not attacked: {sorted(paths - normalised)}"
    unexpected = []
    for who in ATTACKERS:
        for method, path, kwargs, allowed in attacks:
            if method == "POST" and path == "/v1/audits" and who != "rita":
                continue  # starting an audit job is the caller's own business (and slow)
            response = site.call(who, method, path, **kwargs)
            if response.status_code not in allowed:
                unexpected.append(f"{who} {method} {path}: {response.status_code} {response.text[:200]}")
    assert unexpected == []
    assert site.leaks == []  # 0 cross-tenant reads
    assert _alice_state(site) == before  # 0 cross-tenant writes
