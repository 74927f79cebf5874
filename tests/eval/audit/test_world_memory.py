"""The audit's world memory goes through the tell pipeline's bulk door, the world's EDITS included (issue 16)."""

from __future__ import annotations

from pathlib import Path


def test_the_world_edits_are_one_logged_edit_in_their_own_namespace(audit_home: Path) -> None:
    from agent.config import TellSettings, open_home
    from agent.tell import TellPipeline
    from agent.wiring import open_working_memory
    from eval.audit._stack import EDITS_SCOPE_ID, EDITS_WHO

    with open_working_memory(open_home(audit_home)) as wm:
        edits = [a for a in wm.graph.facts(namespaces=[EDITS_SCOPE_ID]) if a.namespace == EDITS_SCOPE_ID]
        assert edits and {a.who for a in edits} == {EDITS_WHO}
        (edit_id,) = {a.edit_id for a in edits}  # written directly before: no edit id, in the world namespace
        record = TellPipeline.open(wm, TellSettings(interpreter="templates")).log.edit(str(edit_id))
        assert record.namespace == EDITS_SCOPE_ID and record.text.startswith("world edits")
        assert set(record.triples) == {a.triple for a in edits}
        world = {(a.triple.subject, a.triple.relation) for a in wm.graph.facts(namespaces=["world"])}
        readers = [EDITS_SCOPE_ID, "world"]
        for a in edits:  # a reader of the edits sees the edit's object wherever the world had another
            if (a.triple.subject, a.triple.relation) in world:
                seen = wm.graph.facts(a.triple.subject, a.triple.relation, namespaces=readers)
                assert [f.triple.object for f in seen] == [a.triple.object]
