"""The tell pipeline end to end on the real stores: apply, supersede, augment, roll back exactly, history."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.tell import TellPipeline
from agent.wiring import WorkingMemory
from eval.world import World
from memory import Scope, Triple
from tests.agent.tell.conftest import snapshot, unknown_fact
from tools.errors import ContradictoryStatementError, InvalidInputError, PermissionDeniedError, UnknownEditError


def _objects(wm: WorkingMemory, subject: str, relation: str, namespaces: list[str] | None = None) -> list[str]:
    return [a.triple.object for a in wm.graph.facts(subject, relation, namespaces=namespaces)]


def test_a_told_fact_supersedes_the_old_one_in_kg_and_memory(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    old_hits = [
        h.item.id
        for h in wm.memory.search(f"Who is the CEO of {fact.subject}?", k=3)
        if h.item.triple and h.item.triple.object == fact.object
    ]
    assert old_hits  # the world's document about the old CEO is in memory

    result = pipeline.tell(f"Actually, the CEO of {fact.subject} is now Jane Roe.", user="alice", namespace="chat")

    assert result.status == "applied" and result.kind == "edit"
    assert result.edit_id is not None and result.edit_id.startswith("e-") and len(result.edit_id) == 10
    assert result.triples == (Triple(fact.subject, "company_ceo", "Jane Roe"),)
    assert result.superseded == (Triple(fact.subject, "company_ceo", fact.object),)
    assert result.message.startswith(f"Noted as edit {result.edit_id}: ({fact.subject}, CEO, Jane Roe). Replaces")
    assert _objects(wm, fact.subject, "company_ceo", ["chat", "world"]) == ["Jane Roe"]
    assert _objects(wm, fact.subject, "company_ceo", ["world"]) == [fact.object]  # the world keeps its fact
    new = wm.graph.facts(fact.subject, "company_ceo", namespaces=["chat", "world"])[0]
    assert (new.who, new.source, new.edit_id, new.namespace) == ("user:alice", "tell", result.edit_id, "chat")
    hits = wm.memory.search(f"Who is the CEO of {fact.subject}?", k=3, scope=Scope(agent_id="chat"))
    assert hits[0].item.edit_id == result.edit_id and hits[0].item.triple == result.triples[0]
    assert wm.memory.history(old_hits[0])[-1].status == "active"  # another namespace's memory is never written
    assert pipeline.tell(f"The CEO of {fact.subject} is Jane Roe.", user="bob", namespace="chat").status == "noop"
    assert pipeline.tell(f"The CEO of {fact.subject} is Jane Roe.", user="bob").status == "applied"  # "default"


def test_rollback_restores_kg_quads_and_memory_rows_exactly(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "company_hq")
    before = snapshot(wm)
    first = pipeline.tell(f"{fact.subject} is headquartered in Atlantis.", user="alice")
    second = pipeline.tell("Ann Lee is married to Tom Lee. The mother of Bo Lee is Ann Lee.", user="alice")
    assert first.status == second.status == "applied"
    assert snapshot(wm) != before

    with pytest.raises(PermissionDeniedError):
        pipeline.rollback(second.edit_id or "", user="bob")  # only the author, admins and trusted users
    undone = pipeline.rollback(second.edit_id or "", user="tess")
    assert undone.assertions == len(second.triples) + len(second.augmented)
    pipeline.rollback(first.edit_id or "", user="alice")
    assert snapshot(wm) == before
    assert _objects(wm, fact.subject, "company_hq") == [fact.object]
    with pytest.raises(InvalidInputError, match="already rolled back"):
        pipeline.rollback(first.edit_id or "", user="alice")


def test_augmented_facts_share_the_edit_id_and_go_with_it(pipeline: TellPipeline, wm: WorkingMemory) -> None:
    result = pipeline.tell("Ann Lee is married to Tom Lee. The mother of Bo Lee is Ann Lee.", user="alice")
    assert set(result.augmented) == {
        Triple("Tom Lee", "spouse", "Ann Lee"),  # symmetric
        Triple("Ann Lee", "child", "Bo Lee"),  # mother => child of the mother
        Triple("Bo Lee", "person_father", "Tom Lee"),  # mother & spouse => father
    }
    assert "Also derived:" in result.message
    assert {a.edit_id for a in wm.graph.assertions_for_edit(result.edit_id or "")} == {result.edit_id}
    assert _objects(wm, "Bo Lee", "person_father") == ["Tom Lee"]
    derived = [h for h in wm.memory.search("Who is the father of Bo Lee?", k=5) if h.item.metadata["kind"] == "derived"]
    assert derived and derived[0].item.edit_id == result.edit_id

    pipeline.rollback(result.edit_id or "", user="alice")
    assert wm.graph.assertions_for_edit(result.edit_id or "") == []
    assert _objects(wm, "Bo Lee", "person_father") == [] and _objects(wm, "Tom Lee", "spouse") == []
    assert all(h.item.edit_id != result.edit_id for h in wm.memory.search("father of Bo Lee", k=10))


def test_a_derived_fact_never_overrides_an_asserted_one(pipeline: TellPipeline, wm: WorkingMemory) -> None:
    pipeline.tell("The father of Bo Lee is Max Lee.", user="alice")
    result = pipeline.tell("Ann Lee is married to Tom Lee. The mother of Bo Lee is Ann Lee.", user="alice")
    assert Triple("Bo Lee", "person_father", "Tom Lee") not in result.augmented
    assert _objects(wm, "Bo Lee", "person_father") == ["Max Lee"]
    assert any(c.existing == Triple("Bo Lee", "person_father", "Max Lee") for c in result.conflicts)


def test_rolling_back_an_older_edit_first_names_the_later_one(pipeline: TellPipeline, wm: WorkingMemory) -> None:
    first = pipeline.tell("The CEO of Zeta Labs is Ann Lee.", user="alice")
    second = pipeline.tell("The CEO of Zeta Labs is Tom Lee.", user="alice")
    before = snapshot(wm)
    with pytest.raises(InvalidInputError, match=f"roll back {second.edit_id} first"):
        pipeline.rollback(first.edit_id or "", user="alice")
    assert snapshot(wm) == before  # nothing half-undone
    pipeline.rollback(second.edit_id or "", user="alice")
    pipeline.rollback(first.edit_id or "", user="alice")
    assert _objects(wm, "Zeta Labs", "company_ceo") == []


def test_history_lists_told_edits_and_loaded_facts_newest_first(pipeline: TellPipeline, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    a = pipeline.tell(f"The CEO of {fact.subject} is Jane Roe.", user="alice")
    b = pipeline.tell(f"{fact.subject} is headquartered in Atlantis.", user="bob")
    pipeline.rollback(a.edit_id or "", user="alice")
    records = pipeline.history(fact.subject)
    assert [r.edit_id for r in records[:2]] == [b.edit_id, a.edit_id]
    assert [r.status for r in records[:2]] == ["applied", "rolled_back"]
    assert records[0].who == "user:bob" and records[0].text.endswith("Atlantis.")
    loaded = [r for r in records if r.origin == "kg"]
    assert loaded and loaded[-1].who == "world" and loaded[-1].triples[0].object == fact.object
    assert [r.created_at for r in records] == sorted((r.created_at for r in records), reverse=True)


def test_questions_chitchat_and_free_text(pipeline: TellPipeline, wm: WorkingMemory) -> None:
    before = snapshot(wm)
    assert pipeline.tell("Who is the CEO of Acme Corp?", user="alice").status == "not_an_edit"
    assert pipeline.tell("Thanks!", user="alice").message == "Not an edit: chit-chat."
    assert snapshot(wm) == before
    result = pipeline.tell("Acme Corp sponsors the Duck Pond Rowing Club.", user="alice")
    assert (result.status, result.kind, result.triples) == ("free_text", "free_text", ())
    hit = wm.memory.search("Who sponsors the rowing club?", k=1)[0].item
    assert hit.edit_id == result.edit_id and hit.triple is None and hit.metadata["kind"] == "free_text"
    pipeline.rollback(result.edit_id or "", user="alice")
    assert snapshot(wm)[1] == before[1]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", InvalidInputError),
        ("   \n", InvalidInputError),
        ("The CEO of Acme Corp is Jane Roe. " * 200, InvalidInputError),  # over 4,000 characters
        ("The CEO of Acme Corp is Jane Roe. The CEO of Acme Corp is Bob Stone.", ContradictoryStatementError),
    ],
)
def test_bad_messages_change_nothing(
    pipeline: TellPipeline, wm: WorkingMemory, text: str, error: type[Exception]
) -> None:
    before = snapshot(wm)
    with pytest.raises(error):
        pipeline.tell(text, user="alice")
    assert snapshot(wm) == before


def test_bad_user_namespace_and_edit_id(make_pipeline: Callable[..., TellPipeline]) -> None:
    pipeline = make_pipeline()
    with pytest.raises(InvalidInputError, match="user name"):
        pipeline.tell("The CEO of Acme Corp is Jane Roe.", user="user:eve")
    with pytest.raises(InvalidInputError, match="agent_id"):
        pipeline.tell("The CEO of Acme Corp is Jane Roe.", user="eve", namespace="no spaces")
    with pytest.raises(UnknownEditError, match="e-00000000"):
        pipeline.rollback("e-00000000", user="eve")
    assert isinstance(UnknownEditError("x"), KeyError)  # a NotFoundError
