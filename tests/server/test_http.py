"""End to end through real HTTP: uvicorn on loopback, the Python client, keys, tenants and limits."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from agent.client import AsyncFactagentClient, FactagentClient
from agent.server._schemas import AuditRequest, TripleModel
from agent.tell import BulkFact
from memory import Triple
from tests.server.conftest import Served, key
from tools.errors import InvalidInputError, NotFoundError, PermissionDeniedError, RateLimitedError

ACME = "The CEO of Acme Widgets is Jane Roe."


def client(server: Served, name: str) -> FactagentClient:
    return FactagentClient(server.url, key(name), timeout=60)


def test_health_metrics_and_openapi_need_no_key(server: Served) -> None:
    assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"
    schema = httpx.get(f"{server.url}/openapi.json").json()
    assert {"/v1/ask", "/v1/tell", "/v1/facts", "/v1/chat/completions", "/v1/edits/{edit_id}/rollback"} <= set(
        schema["paths"]
    )
    text = httpx.get(f"{server.url}/v1/metrics").text
    assert "factagent_requests_total" in text


def test_a_bulk_load_is_one_edit_whose_facts_are_paged(server: Served) -> None:
    """Issue 16, gap 5: ``GET /v1/edits`` listed a 1,061-fact world load whole; now a preview and pages."""
    facts = [
        BulkFact(text=f"Pagerco {i} is based in Page City {i}.", triple=Triple(f"Pagerco {i}", "company_hq", f"P{i}"))
        for i in range(45)
    ]
    loaded = server.agent.pipeline.load(facts, who="world", namespace="alice", text="paging test")
    other = server.agent.pipeline.load(facts[:1], who="world", namespace="alice", text="a later load")
    try:
        with client(server, "alice") as alice, client(server, "bob") as bob:
            entry = next(e for e in alice.edits(limit=500).edits if e.edit_id == loaded.edit_id)
            assert entry.triple_count == 45 and len(entry.triples) == 20
            paged: list[str] = []
            offset: int | None = 0
            while offset is not None:
                page = alice.edit_triples(loaded.edit_id, offset=offset, limit=20)
                assert page.total == 45
                paged += [t.subject for t in page.triples]
                offset = page.next_offset
            assert paged == [f"Pagerco {i}" for i in range(45)]
            first, second = alice.edits(limit=1), alice.edits(limit=1, offset=1)
            assert [e.edit_id for e in first.edits + second.edits] == [other.edit_id, loaded.edit_id]
            assert first.next_offset == 1 and second.next_offset is None
            with pytest.raises(NotFoundError):
                bob.edit_triples(loaded.edit_id)  # not in a namespace bob reads
    finally:
        for done in (other, loaded):
            server.agent.pipeline.editor.undo(done.edit_id, by="root")


def test_tell_then_ask_then_rollback(server: Served) -> None:
    with client(server, "alice") as alice:
        told = alice.tell(ACME)
        assert told.status == "applied" and told.edit_id
        answer = alice.ask("Who is the CEO of Acme Widgets?")
        assert "Jane Roe" in answer.text and answer.citations
        assert told.edit_id in {e.edit_id for e in alice.edits().edits}
        assert any(e.edit_id == told.edit_id for e in alice.history("Acme Widgets").edits)
        done = alice.rollback(told.edit_id)
        assert done.edit_id == told.edit_id
        assert "Jane Roe" not in alice.ask("Who is the CEO of Acme Widgets?").text


def test_fact_crud_and_search_are_per_tenant(server: Served) -> None:
    with client(server, "alice") as alice, client(server, "bob") as bob, client(server, "rita") as rita:
        fact = alice.add_fact("Alice's cat is called Mittens.", metadata={"kind": "pet"})
        assert fact.namespace == "alice" and fact.version == 1
        assert alice.get_fact(fact.id).text == fact.text
        hits = alice.search_facts("What is the name of Alice's cat?", k=3).hits
        assert hits and hits[0].fact.id == fact.id
        with pytest.raises(NotFoundError):  # another tenant: the same answer as a missing fact
            bob.get_fact(fact.id)
        assert all(h.fact.id != fact.id for h in bob.search_facts("Alice's cat Mittens", k=10).hits)
        assert rita.get_fact(fact.id).id == fact.id  # granted read access to alice's namespace
        with pytest.raises(PermissionDeniedError):
            rita.update_fact(fact.id, "Alice's cat is called Tom.")
        updated = alice.update_fact(fact.id, "Alice's cat is called Felix.")
        assert updated.version == 2 and updated.text.endswith("Felix.")
        deleted = alice.delete_fact(fact.id)
        assert deleted.status == "deleted"
        with pytest.raises(NotFoundError):
            alice.get_fact(fact.id)


def test_fact_with_triple_reaches_the_knowledge_graph(server: Served) -> None:
    with client(server, "alice") as alice:
        triple = TripleModel(subject="Zorblax Corp", relation="company_ceo", object="Quinn Vale")
        fact = alice.add_fact("Quinn Vale runs Zorblax Corp.", triple=triple)
        assert "Quinn Vale" in alice.ask("Who is the CEO of Zorblax Corp?").text
        alice.delete_fact(fact.id)
        assert "Quinn Vale" not in alice.ask("Who is the CEO of Zorblax Corp?").text


def test_namespace_denial_does_not_reveal_existence(server: Served) -> None:
    with client(server, "bob") as bob:
        with pytest.raises(PermissionDeniedError) as existing:
            bob.search_facts("anything", namespace="alice")
        with pytest.raises(PermissionDeniedError) as missing:
            bob.search_facts("anything", namespace="no-such-namespace")
        assert str(existing.value) == str(missing.value)


def test_only_admins_roll_back_others_edits(server: Served) -> None:
    with client(server, "alice") as alice, client(server, "bob") as bob, client(server, "root") as root:
        told = alice.tell("The CEO of Plumbus Ltd is Ada Byron.")
        assert told.edit_id
        with pytest.raises(PermissionDeniedError) as other:  # 403, as for an edit that does not exist
            bob.rollback(told.edit_id)
        with pytest.raises(PermissionDeniedError) as missing:
            bob.rollback("e-00000000")
        assert str(other.value) == str(missing.value) and "alice" not in str(other.value)
        assert root.rollback(told.edit_id).edit_id == told.edit_id


def test_readers_cannot_tell(server: Served) -> None:
    with client(server, "rita") as rita, pytest.raises(PermissionDeniedError):
        rita.tell(ACME)


def test_client_mistakes_are_4xx_json(server: Served) -> None:
    h = {"Authorization": f"Bearer {key('alice')}"}
    cases = [
        httpx.post(f"{server.url}/v1/ask", json={"question": ""}, headers=h),
        httpx.post(f"{server.url}/v1/ask", json={"question": "x", "bogus": 1}, headers=h),
        httpx.post(f"{server.url}/v1/ask", content=b"{not json", headers={**h, "Content-Type": "application/json"}),
        httpx.get(f"{server.url}/v1/facts/m-0000000000000000", headers=h),
        httpx.get(f"{server.url}/v1/facts/not-an-id", headers=h),
        httpx.post(f"{server.url}/v1/ask", json={"question": "x" * 5000}, headers=h),
        httpx.post(f"{server.url}/v1/ask", json={"question": "who?"}),
        httpx.post(f"{server.url}/v1/ask", json={"question": "who?"}, headers={"Authorization": "Bearer wrong-key"}),
        httpx.delete(f"{server.url}/v1/health"),
        httpx.get(f"{server.url}/v1/nowhere", headers=h),
    ]
    codes = [r.status_code for r in cases]
    assert codes == [422, 422, 422, 404, 422, 413, 401, 401, 405, 404]
    for r in cases:
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["message"]


def test_per_key_rate_limit(server: Served) -> None:
    with client(server, "slow") as slow:
        for _ in range(3):
            slow.health()  # health needs no key: it is not counted
            slow.edits()
        with pytest.raises(RateLimitedError) as caught:
            slow.edits()
        assert caught.value.retry_after > 0


def test_audit_job_runs_in_the_background(server: Served) -> None:
    with client(server, "alice") as alice, client(server, "bob") as bob:
        job = alice.start_audit(AuditRequest(setups=["standalone", "rag"], limit=4))
        for _ in range(100):
            job = alice.audit(job.id)
            if job.status in ("done", "failed"):
                break
            asyncio.run(asyncio.sleep(0.05))
        assert job.status == "done" and job.result and set(job.result) == {"standalone", "rag"}
        with pytest.raises(NotFoundError):
            bob.audit(job.id)
    with client(server, "rita") as rita, pytest.raises(PermissionDeniedError):
        rita.start_audit()
    bad = AuditRequest.model_construct(dataset="/etc/passwd", setups=["rag"], limit=1, grader="exact")
    with client(server, "alice") as alice, pytest.raises(InvalidInputError):  # only world datasets are served
        alice.start_audit(bad)


def test_async_client(server: Served) -> None:
    async def go() -> None:
        async with AsyncFactagentClient(server.url, key("bob")) as bob:
            fact = await bob.add_fact("Bob keeps bees on the roof.")
            got, found = await asyncio.gather(bob.get_fact(fact.id), bob.search_facts("bees", k=1))
            assert got.id == fact.id and found.hits[0].fact.id == fact.id
            answer = await bob.ask("Who is the CEO of Nokia?")
            assert answer.action in ("kg", "rag", "model", "abstain")
            assert (await bob.health()).status == "ok"

    asyncio.run(go())


def test_state_persists_across_restarts(serve) -> None:  # type: ignore[no-untyped-def]
    with serve() as first:
        root = first.home.root
        with client(first, "alice") as alice:
            told = alice.tell("The CEO of Gizmo Works is Ola Nord.")
            fact = alice.add_fact("Gizmo Works makes sprockets.")
    with serve(root) as second, client(second, "alice") as alice:
        assert alice.get_fact(fact.id).text == "Gizmo Works makes sprockets."
        assert told.edit_id in {e.edit_id for e in alice.edits().edits}
        assert "Ola Nord" in alice.ask("Who is the CEO of Gizmo Works?").text
