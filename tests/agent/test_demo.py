"""``factagent demo``: the whole story (questions, told facts, a rollback, hallucination rates) offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.cli import main


def _sections(out: str) -> list[str]:
    return [line for line in out.splitlines() if line[:2] in ("1.", "2.", "3.", "4.")]


def test_demo_in_a_preloaded_home_tells_rolls_back_and_leaves_the_home_as_it_was(
    tmp_path: Path, loaded_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    assert main(["--home", str(home), "demo", "--in-home", "--n", "1", "--sample", "6"]) == 0
    out = capsys.readouterr().out
    assert len(_sections(out)) == 4
    assert out.count("   model alone : ") == 3 and out.count("   with memory : ") == 3
    assert out.count("   agent       : ") == 3
    noted = [line for line in out.splitlines() if line.startswith("factagent> Noted as edit e-")]
    assert len(noted) == 2
    first = noted[0].split()[4].rstrip(":")
    assert f"factagent> Rolled back edit {first}" in out
    changed = [line for line in out.splitlines() if "->  now:" in line]
    assert changed and all("(kg · edit e-" in line for line in changed)  # told facts win over the model
    assert "Hallucination on 6 test questions (2 known, 2 unknown, 2 unanswerable" in out
    # --in-home undoes the demo's edits: asking again afterwards finds no told fact
    assert main(["--home", str(home), "ask", "--json", changed[-1].split("  before:")[0].strip()]) == 0
    assert '"action": "kg"' not in capsys.readouterr().out


def test_bad_numbers_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "demo", "--n", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --n must be at least 1")


@pytest.mark.slow
def test_demo_runs_offline_on_the_bundled_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "demo"]) == 0
    out = capsys.readouterr().out
    assert len(_sections(out)) == 4 and "loaded 1061 world documents" in out
    assert out.count("   model alone : ") == 6
    assert "abstain" in out and "(kg · edit e-" in out
    assert "· agent 0.0% (" in out  # concept classes once made it answer an unanswerable question
    assert not (tmp_path / "memory").exists()  # the user's home is untouched (a temporary memory was used)
