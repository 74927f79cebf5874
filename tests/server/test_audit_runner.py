"""The default audit-job runner really runs :func:`eval.audit.run_audit` (slow: it loads the model again)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.server._jobs import JobProgress, run_world_audit
from agent.server._schemas import AuditRequest


@pytest.mark.slow
def test_world_audit_runner(tmp_path: Path, loaded_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    seen: list[dict[str, list[int]]] = []
    progress = JobProgress(seen.append)
    result = run_world_audit(home)(AuditRequest(setups=["standalone", "rag"], limit=6), tmp_path / "run", progress)
    assert set(result) == {"standalone", "rag"}
    assert 0.0 <= result["rag"]["accuracy"] <= 1.0
    assert (tmp_path / "run" / "answers.jsonl").is_file()
    assert seen[-1] == {"standalone": [6, 6], "rag": [6, 6]}  # the real runner reports its progress
