"""``factagent concept-check`` and ``concept-bench``'s bad input, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main
from tests.conftest import REPO


def test_concept_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "concept-check", "--limit", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["edits"] == 2 and out["rollbacks_exact"] == 2 and out["questions"] > 0
    assert 0.0 <= out["rate"] <= 1.0 and out["consistent"] + out["unknown"] <= out["questions"]


def test_concept_bench_refuses_a_missing_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = REPO / "eval" / "world" / "models" / "gpt2-world"  # checked, never loaded: the dataset fails first
    argv = ["--home", str(tmp_path), "concept-bench", "--model", str(model), "--judge", "none"]
    assert main([*argv, "--dataset", str(tmp_path / "nope.json")]) == 2
    assert "neither 'world' nor a ConceptEdit file" in capsys.readouterr().err
