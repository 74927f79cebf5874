"""The session table and its one-time form tokens (no server needed)."""

from __future__ import annotations

import time

from agent.server import Principal
from agent.server.web import SessionStore
from agent.server.web._session import MAX_FORMS

WHO = Principal("alice", "editor", ("alice",))


def test_a_session_expires_when_idle_and_is_gone_after_sign_out() -> None:
    store = SessionStore(idle_s=0.05)
    session = store.open(WHO)
    assert store.get(session.token) is session and store.get("made-up") is None and store.get(None) is None
    time.sleep(0.1)
    assert store.get(session.token) is None  # expired: an old cookie signs nobody in
    again = store.open(WHO)
    store.close(again.token)
    assert store.get(again.token) is None


def test_form_tokens_are_spent_once_and_only_by_their_session() -> None:
    store = SessionStore()
    mine, theirs = store.open(WHO), store.open(WHO)
    token = mine.mint()
    assert not theirs.spend(token) and not mine.spend("") and not mine.spend(None)
    assert mine.spend(token) and not mine.spend(token)  # a replay is refused
    first = mine.mint()
    for _ in range(MAX_FORMS):
        mine.mint()
    assert not mine.spend(first)  # the oldest of too many open forms is dropped


def test_the_oldest_session_goes_past_the_cap() -> None:
    store = SessionStore(max_sessions=2)
    first, _, _ = (store.open(WHO) for _ in range(3))
    assert store.get(first.token) is None
