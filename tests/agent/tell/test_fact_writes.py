"""The facts API's doors through the pipeline: updating a stored fact, and a held fact's metadata on approval."""

from __future__ import annotations

import pytest

from agent.tell import TellPipeline
from agent.wiring import WorkingMemory
from eval.world import World
from memory import Triple
from tests.agent.tell.conftest import snapshot, unknown_fact
from tools.errors import InvalidInputError, PermissionDeniedError

SEEN = ["alice", "world"]


def _objects(wm: WorkingMemory, subject: str, relation: str, namespaces: list[str]) -> list[str]:
    return [a.triple.object for a in wm.graph.facts(subject, relation, namespaces=namespaces)]


def test_updating_a_facts_triple_is_a_logged_edit_of_the_kg_that_rolls_back_to_the_prior_version(
    pipeline: TellPipeline, wm: WorkingMemory
) -> None:
    created = pipeline.assert_fact(
        "The CEO of Patchco is Old Boss.", Triple("Patchco", "company_ceo", "Old Boss"), "alice", "alice"
    )
    [item_id] = created.memory_items
    item = wm.memory.get(item_id)
    updated = pipeline.update_fact(
        item, "The CEO of Patchco is New Boss.", Triple("Patchco", "company_ceo", "New Boss"), "alice", SEEN
    )
    assert updated.status == "applied" and updated.edit_id and updated.edit_id != created.edit_id
    assert updated.memory_items == (item_id,)  # the same fact, a new version
    assert _objects(wm, "Patchco", "company_ceo", SEEN) == ["New Boss"]
    assert pipeline.log.edit(updated.edit_id).triples == (Triple("Patchco", "company_ceo", "New Boss"),)
    assert [(v.version, v.text) for v in wm.memory.history(item_id)] == [
        (1, "The CEO of Patchco is Old Boss."),
        (2, "The CEO of Patchco is New Boss."),
    ]
    assert wm.memory.get(item_id).triple == Triple("Patchco", "company_ceo", "New Boss")

    pipeline.rollback(updated.edit_id, "alice")
    assert _objects(wm, "Patchco", "company_ceo", SEEN) == ["Old Boss"]
    restored = wm.memory.get(item_id)
    assert (restored.version, restored.text) == (1, "The CEO of Patchco is Old Boss.")


def test_a_new_text_alone_keeps_the_triple_and_is_logged(pipeline: TellPipeline, wm: WorkingMemory) -> None:
    created = pipeline.assert_fact(
        "The CEO of Textco is Ann Lee.", Triple("Textco", "company_ceo", "Ann Lee"), "alice", "alice"
    )
    item = wm.memory.get(created.memory_items[0])
    updated = pipeline.update_fact(item, "Ann Lee runs Textco.", None, "alice", SEEN, metadata={"src": "memo"})
    assert updated.status == "free_text" and updated.edit_id
    new = wm.memory.get(item.id)
    assert (new.text, new.triple, new.metadata) == ("Ann Lee runs Textco.", item.triple, {"src": "memo"})
    assert _objects(wm, "Textco", "company_ceo", SEEN) == ["Ann Lee"]
    assert pipeline.log.edit(updated.edit_id).text == "Ann Lee runs Textco."
    with pytest.raises(InvalidInputError, match="object"):  # another subject: a new fact, not an update
        pipeline.update_fact(new, "x", Triple("Elsewhere", "company_ceo", "Ann Lee"), "alice", SEEN)


def test_an_untrusted_update_contradicting_a_trusted_fact_is_held_and_changes_nothing(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    own = pipeline.assert_fact("A note on a company.", None, "mallory", "mallory")
    item = wm.memory.get(own.memory_items[0])
    before = snapshot(wm)
    held = pipeline.update_fact(
        item, f"The CEO of {fact.subject} is Evil Eve.", Triple(fact.subject, "company_ceo", "Evil Eve"), "mallory"
    )
    assert held.status == "quarantined" and held.edit_id is None
    assert snapshot(wm) == before
    # a trusted user's fact may not be changed by an untrusted user at all
    told = pipeline.assert_fact("Tess's fact.", Triple("Tessco", "company_ceo", "Tess Roe"), "tess", "mallory")
    with pytest.raises(PermissionDeniedError):
        pipeline.update_fact(wm.memory.get(told.memory_items[0]), "Changed.", None, "mallory")


def test_approving_a_held_fact_keeps_the_metadata_posted_with_it(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    held = pipeline.assert_fact(
        f"The CEO of {fact.subject} is Evil Eve.",
        Triple(fact.subject, "company_ceo", "Evil Eve"),
        "mallory",
        "mallory",
        metadata={"ticket": "T-17", "score": 3},
    )
    assert held.status == "quarantined" and held.quarantine_id
    approved = pipeline.review(held.quarantine_id, approve=True, user="root")
    assert approved is not None and approved.status == "applied"
    stored = wm.memory.get(approved.memory_items[0])
    assert stored.metadata.get("ticket") == "T-17" and stored.metadata.get("score") == 3
    assert pipeline.log.quarantine_item(held.quarantine_id).metadata == {"ticket": "T-17", "score": 3}
