"""The web app over plain HTTP (a browser without JS): sessions, CSRF, error pages, escaping, roles."""

from __future__ import annotations

import time

import httpx

from memory import Scope
from tests.server.conftest import Served, key
from tests.server.web.conftest import form_token, sign_in

WORLD = ["world"]


def _ceo(web: Served, index: int) -> tuple[str, str]:
    a = web.agent.wm.graph.facts(relation="company_ceo", namespaces=WORLD)[index]
    return a.triple.subject, a.triple.object


def _log(web: Served) -> list[tuple[str, str]]:
    return [(r.edit_id, r.status) for r in web.agent.pipeline.log.recent(["alice", "bob", "rita", "admin"], 500, 0)]


def test_a_key_becomes_a_session_cookie_and_never_reaches_a_page(web: Served) -> None:
    client = httpx.Client(base_url=web.url, timeout=60)
    signin = client.get("/ui/signin")
    assert signin.status_code == 200 and 'type="password"' in signin.text
    wrong = client.post("/ui/signin", data={"key": "not-a-key-123", "pre": form_token(signin.text, "pre")})
    assert wrong.status_code == 401 and "not-a-key-123" not in wrong.text and "fa_session" not in client.cookies
    stale = client.post("/ui/signin", data={"key": key("alice"), "pre": "forged"})
    assert stale.status_code == 403 and "fa_session" not in stale.headers.get("set-cookie", "")
    ok = client.post("/ui/signin", data={"key": key("alice"), "pre": form_token(wrong.text, "pre")})
    cookie = ok.headers["set-cookie"]
    assert ok.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie and key("alice") not in cookie
    chat = client.get("/ui/chat")
    assert chat.status_code == 200 and "alice (editor)" in chat.text and key("alice") not in chat.text
    assert "default-src 'self'" in chat.headers["content-security-policy"]
    client.post("/ui/signout", data={"csrf": form_token(chat.text)})
    assert client.get("/ui/chat").status_code == 401  # the session is gone on the server


def test_refusals_are_friendly_pages_with_the_right_status(web: Served) -> None:
    anonymous = httpx.get(f"{web.url}/ui/memory", timeout=60)
    assert anonymous.status_code == 401 and "text/html" in anonymous.headers["content-type"]
    assert "Please sign in" in anonymous.text
    alice = sign_in(web.url, "alice")
    for path, status in [
        ("/ui/no/such/page", 404),
        ("/ui/facts/m-00000000000000ff", 404),
        ("/ui/edits/e-00000000", 404),
        ("/ui/audits/a-000000000000", 404),
        ("/ui/quarantine", 403),
        ("/ui/memory?page=0", 422),
        ("/ui/memory?as_of=yesterday", 422),
        ("/ui/memory?namespace=bob", 403),
        ("/ui/memory?page=9999", 404),
    ]:
        r = alice.get(path)
        assert r.status_code == status, (path, r.status_code)
        assert r.text.startswith("<!doctype html>") and 'role="alert"' in r.text, path
    slow = sign_in(web.url, "slow")  # 3 requests per minute: the fourth page is one too many
    codes = [slow.get("/ui/chat").status_code for _ in range(4)]
    assert codes[-1] == 429 and "Retry-After" in slow.get("/ui/chat").headers


def test_forged_and_replayed_posts_are_refused_and_change_nothing(web: Served) -> None:
    alice = sign_in(web.url, "alice")
    subject, _ = _ceo(web, -1)  # the browser tests (same server) use the first two
    said = {"statement": f"The CEO of {subject} is Forge Ry.", "namespace": "alice"}
    before = _log(web)
    page = alice.get("/ui/chat").text
    assert alice.post("/ui/chat/tell", data=said).status_code == 403  # no token
    assert alice.post("/ui/chat/tell", data={**said, "csrf": "x" * 32}).status_code == 403  # a made-up one
    bob = sign_in(web.url, "bob")
    foreign = form_token(bob.get("/ui/chat").text)
    assert alice.post("/ui/chat/tell", data={**said, "csrf": foreign}).status_code == 403  # another session's
    assert httpx.post(f"{web.url}/ui/chat/tell", data=said).status_code == 401  # no session at all
    assert _log(web) == before
    token = form_token(page)
    told = alice.post("/ui/chat/tell", data={**said, "csrf": token})
    assert told.status_code == 200 and "applied" in told.text
    after = _log(web)
    assert alice.post("/ui/chat/tell", data={**said, "csrf": token}).status_code == 403  # replayed
    assert _log(web) == after


def test_user_text_is_escaped_everywhere(web: Served) -> None:
    evil = "<script>alert('x')</script> Evil Corp sells <b>tea</b>."
    r = httpx.post(f"{web.url}/v1/facts", json={"text": evil}, headers={"Authorization": f"Bearer {key('alice')}"})
    assert r.status_code == 201, r.text
    alice = sign_in(web.url, "alice")
    for path in ("/ui/memory?q=Evil+Corp+sells+tea", f"/ui/facts/{r.json()['id']}"):
        html = alice.get(path).text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html and "<script>alert" not in html, path
    bob = sign_in(web.url, "bob")  # another tenant: the same "not found" as a missing fact
    assert bob.get(f"/ui/facts/{r.json()['id']}").status_code == 404
    asked = alice.post("/ui/chat/ask", data={"question": evil, "csrf": form_token(alice.get("/ui/chat").text)})
    assert asked.status_code == 200 and "<script>alert" not in asked.text and "&lt;b&gt;tea" in asked.text


def test_a_reader_gets_no_edit_controls_and_cannot_roll_back(web: Served) -> None:
    alice = sign_in(web.url, "alice")
    subject, _ = _ceo(web, -2)
    told = alice.post(
        "/ui/chat/tell",
        data={"statement": f"The CEO of {subject} is Rita Reads.", "csrf": form_token(alice.get("/ui/chat").text)},
    )
    edit_id = told.text.split('data-testid="tell-edit">edit ')[1].split("<")[0]
    assert "Roll back" in alice.get("/ui/edits").text
    rita = sign_in(web.url, "rita")  # a reader who may read alice's namespace
    edits = rita.get("/ui/edits").text
    assert edit_id in edits and "Roll back" not in edits
    assert 'action="/ui/chat/tell"' not in rita.get("/ui/chat").text
    assert "Roll back" not in rita.get(f"/ui/edits/{edit_id}").text
    assert rita.get(f"/ui/edits/{edit_id}/rollback").status_code == 403
    token = form_token(rita.get("/ui/chat").text)  # a real token of hers: the role, not the token, refuses
    assert rita.post(f"/ui/edits/{edit_id}/rollback", data={"csrf": token}).status_code == 403
    assert web.agent.pipeline.log.edit(edit_id).status == "applied"


def test_audits_start_show_progress_and_compare(web: Served) -> None:
    alice = sign_in(web.url, "alice")
    ids = []
    for limit in (5, 6):
        started = alice.post(
            "/ui/audits",
            data={"setups": ["standalone", "rag"], "limit": limit, "csrf": form_token(alice.get("/ui/audits").text)},
        )
        assert started.status_code == 303
        ids.append(started.headers["location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 30
    while "done" not in alice.get(f"/ui/audits/{ids[1]}").text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "6 / 6 answers" in alice.get(f"/ui/audits/{ids[1]}").text  # each setup's progress
    page = alice.get(f"/ui/audits/compare?a={ids[0]}&b={ids[1]}")
    assert page.status_code == 200 and "hallucination_rate" in page.text and "+0.0000" in page.text
    bob = sign_in(web.url, "bob")
    assert bob.get(f"/ui/audits/{ids[0]}").status_code == 404  # another user's run
    rita = sign_in(web.url, "rita")
    assert 'action="/ui/audits"' not in rita.get("/ui/audits").text


def test_memory_browses_by_subject_namespace_and_time(web: Served) -> None:
    alice = sign_in(web.url, "alice")
    subject, ceo = _ceo(web, 0)
    query = {"subject": subject, "relation": "company_ceo", "namespace": "world"}
    found = alice.get("/ui/memory", params=query).text
    assert ceo in found and 'data-testid="total">1 facts' in found
    assert 'data-testid="total">0 facts' in alice.get("/ui/memory", params={**query, "as_of": "2000-01-01"}).text
    total = web.agent.wm.memory.count(Scope(agent_id="world"))
    listed = alice.get("/ui/memory", params={"namespace": "world"}).text
    assert f'data-testid="total">{total} facts' in listed
    assert listed.count('href="/ui/facts/') == min(50, total) and ("Next page" in listed) == (total > 50)


def test_a_fact_page_travels_back_to_an_older_version(web: Served) -> None:
    h = {"Authorization": f"Bearer {key('alice')}"}
    fact = httpx.post(f"{web.url}/v1/facts", json={"text": "The kettle is blue."}, headers=h).json()
    httpx.patch(f"{web.url}/v1/facts/{fact['id']}", json={"text": "The kettle is red."}, headers=h).raise_for_status()
    v1, v2 = web.agent.wm.memory.history(fact["id"])
    alice = sign_in(web.url, "alice")
    now = alice.get(f"/ui/facts/{fact['id']}").text
    assert "Current (version 2" in now and "The kettle is blue." in now  # the history lists both versions
    between = (v2.valid_from - (v2.valid_from - v1.valid_from) / 2).isoformat()
    then = alice.get(f"/ui/facts/{fact['id']}", params={"as_of": between}).text
    assert "(version 1, superseded)" in then
    before = alice.get(f"/ui/facts/{fact['id']}", params={"as_of": "2000-01-01T00:00"}).text
    assert "did not exist yet" in before
