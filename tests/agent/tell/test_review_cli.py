"""``factagent quarantine list|accept|reject``: an admin reviews held statements from a shell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from agent.tell import TellPipeline
from agent.wiring import WorkingMemory
from eval.world import World
from tests.agent.tell.conftest import unknown_fact


def test_an_admin_lists_accepts_and_rejects_over_the_cli(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ceo, hq = unknown_fact(small_world, "company_ceo"), unknown_fact(small_world, "company_hq")
    first = pipeline.tell(f"The CEO of {ceo.subject} is Evil Eve.", user="mallory", namespace="mal")
    second = pipeline.tell(f"{hq.subject} is headquartered in Atlantis.", user="mallory", namespace="mal")
    assert first.status == second.status == "quarantined"
    home = tmp_path / "home"  # the wm fixture's home
    (home / "config.toml").write_text('[tell]\nroles = { root = "admin", mallory = "untrusted" }\n', "utf-8")
    capsys.readouterr()

    assert main(["--home", str(home), "quarantine", "list", "--json"]) == 0
    rows = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    held = rows[first.quarantine_id or ""]
    assert (held["user"], held["namespace"], held["status"]) == ("mallory", "mal", "pending")
    assert "contradicts the trusted fact" in held["reason"] and ceo.object in held["reason"] and held["created_at"]

    assert main(["--home", str(home), "quarantine", "accept", first.quarantine_id or "", "--user", "mallory"]) == 2
    assert "only admins" in capsys.readouterr().err
    assert main(["--home", str(home), "quarantine", "accept", first.quarantine_id or "", "--user", "root"]) == 0
    assert capsys.readouterr().out.startswith(f"accepted {first.quarantine_id}: Noted as edit")
    assert main(["--home", str(home), "quarantine", "reject", second.quarantine_id or "", "--user", "root"]) == 0
    assert capsys.readouterr().out.startswith(f"rejected {second.quarantine_id}: nothing was changed")
    assert [a.triple.object for a in wm.graph.facts(ceo.subject, "company_ceo", namespaces=["mal", "world"])] == [
        "Evil Eve"
    ]
    assert [a.triple.object for a in wm.graph.facts(hq.subject, "company_hq", namespaces=["mal", "world"])] == [
        hq.object
    ]
    assert main(["--home", str(home), "quarantine", "list", "--status", "all", "--json"]) == 0
    statuses = {r["id"]: r["status"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert statuses == {first.quarantine_id: "approved", second.quarantine_id: "rejected"}
