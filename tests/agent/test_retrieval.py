"""Hybrid retrieval against the real parts: SQLite (WAL), FAISS, the rdflib-backed KG store and MiniLM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config import open_home
from agent.wiring import WorkingMemory, open_working_memory
from kg import Provenance
from memory import Scope, Triple
from tools.errors import InvalidInputError, UnknownNamespaceError

ALICE = Scope(user_id="alice")
ACME = Triple("Acme Corp", "company_ceo", "Jane Roe")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")  # relation-template embeddings, computed once for the module


@pytest.fixture()
def wm(tmp_path: Path, minilm: Any, cache_dir: Path) -> Iterator[WorkingMemory]:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "cache").symlink_to(cache_dir)
    with open_working_memory(open_home(tmp_path / "home"), embedder=minilm) as opened:
        yield opened


def _tell(wm: WorkingMemory, text: str, triple: Triple, edit_id: str) -> None:
    with wm.transaction():
        wm.memory.add(text, scope=ALICE, triple=triple, source="user:alice", edit_id=edit_id)
        wm.graph.add(triple, Provenance(who="alice", source="chat", edit_id=edit_id))
    wm.refresh_entities()


def test_kg_and_memory_hits_merge_into_one_cited_piece_of_evidence(wm: WorkingMemory) -> None:
    _tell(wm, "The CEO of Acme Corp is Jane Roe.", ACME, "e-1")
    wm.memory.add("Acme Corp sells anvils to coyotes.", scope=ALICE, source="doc:anvils")
    evidence = wm.retriever.retrieve("Who is the CEO of Acme Corp?", scope=ALICE)
    top = evidence[0]
    assert top.origin == "both"
    assert top.citation.triple == ACME
    assert top.citation.edit_id == "e-1"
    assert top.citation.item_id is not None and top.citation.assertion_id is not None
    assert [e.origin for e in evidence[1:]] == ["memory"]  # the anvil passage, once; no duplicate of the CEO fact
    assert evidence[1].citation.item_id is not None and evidence[1].score < top.score


def test_a_paraphrased_question_still_finds_the_kg_fact(wm: WorkingMemory) -> None:
    _tell(wm, "Acme Corp is led by Jane Roe.", ACME, "e-1")
    kg_hits = wm.retriever.kg_evidence("Who runs Acme Corp as its chief executive?")
    assert [e.citation.triple for e in kg_hits] == [ACME]


def test_as_of_before_the_edit_and_rollback(wm: WorkingMemory) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    _tell(wm, "The CEO of Acme Corp is Jane Roe.", ACME, "e-1")
    assert wm.retriever.retrieve("Who is the CEO of Acme Corp?", scope=ALICE, as_of=before) == []
    with wm.transaction():
        wm.memory.rollback("e-1")
        wm.graph.rollback("e-1")
    assert wm.retriever.kg_evidence("Who is the CEO of Acme Corp?") == []


def test_scope_keeps_users_apart(wm: WorkingMemory) -> None:
    _tell(wm, "The CEO of Acme Corp is Jane Roe.", ACME, "e-1")
    wm.memory.add("Bob's note: Acme Corp is in Springfield.", scope=Scope(user_id="bob"))
    texts = [e.text for e in wm.retriever.retrieve("Where is Acme Corp?", scope=Scope(user_id="bob"))]
    assert "Bob's note: Acme Corp is in Springfield." in texts
    assert "The CEO of Acme Corp is Jane Roe." not in texts
    with pytest.raises(UnknownNamespaceError):
        wm.retriever.retrieve("Where is Acme Corp?", scope=Scope(user_id="carol"))


def test_memory_and_kg_writes_commit_together(wm: WorkingMemory) -> None:
    with pytest.raises(RuntimeError), wm.transaction():
        wm.memory.add("The CEO of Acme Corp is Jane Roe.", scope=ALICE, triple=ACME, edit_id="e-1")
        wm.graph.add(ACME, Provenance(who="alice", edit_id="e-1"))
        raise RuntimeError("crash between the write and the commit")
    assert wm.graph.facts(relation="company_ceo") == []
    assert wm.memory.count() == 0


def test_relation_template_embeddings_are_cached(wm: WorkingMemory, cache_dir: Path) -> None:
    wm.retriever.kg_evidence("Who runs Acme Corp as its chief executive?")
    assert list(cache_dir.glob("relation-templates-*.npy"))


def test_lookup_links_the_subject_by_alias_and_embedding(wm: WorkingMemory) -> None:
    wm.graph.add(ACME, Provenance(who="alice"), aliases={"Acme Corp": ["ACME Corporation"]})
    wm.refresh_entities()
    assert [a.triple for a in wm.retriever.lookup("acme corporation", "company_ceo")] == [ACME]
    assert [a.triple for a in wm.retriever.lookup("Acme Corp.", "company_ceo")] == [ACME]
    assert [a.triple for a in wm.retriever.lookup("Akme Corp", "company_ceo")] == [ACME]  # embedding stage
    assert wm.retriever.lookup("Acme Corp", "company_hq") == []
    with pytest.raises(InvalidInputError):
        wm.retriever.lookup("Acme Corp", "no_such_relation")
