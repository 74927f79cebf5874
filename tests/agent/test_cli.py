"""The command line: clear errors for bad input, and the world check on the bundled defaults (demo: test_demo.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main


def test_missing_model_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path), "world", "check", "--model", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: model directory") and "does not exist" in err
    assert "Traceback" not in err


def test_model_directory_without_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert main(["world", "check", "--model", str(tmp_path / "m")]) == 2
    assert "no model weights" in capsys.readouterr().err


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.toml").write_text("[model]\nnonsense = 1\n")
    assert main(["--home", str(tmp_path), "demo"]) == 2
    assert "model.nonsense" in capsys.readouterr().err


def test_world_check_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["world", "check", "--limit", "20", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"gpt2-world", "llama-world"}
    for figures in data.values():
        assert set(figures) == {
            "known_train",
            "known_heldout",
            "known_heldout_cloze",
            "unknown",
            "context_unknown",
            "context_counterfactual",
            "n_known",
            "n_unknown",
        }
        assert figures["n_known"] == figures["n_unknown"] == 20
        assert all(0.0 <= figures[k] <= 1.0 for k in figures if not k.startswith("n_"))


@pytest.mark.parametrize(
    "argv",
    [
        ["world", "build", "--epochs", "0"],
        ["world", "build", "--from-phase", "-1"],
        ["world", "check", "--limit", "0"],
        ["world", "check", "--limit", "many"],
    ],
)
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error: argument" in capsys.readouterr().err
