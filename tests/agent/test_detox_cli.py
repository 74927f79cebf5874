"""``factagent detox``: one DINM edit on the bundled vulnerable GPT-2 variant, saved; bad input changes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.cli import main
from eval.world._pipeline import MODELS_DIR
from eval.world.safety import load_safety_slice
from tools.edit import journal_for, load_edited

MODEL = MODELS_DIR / "gpt2-world-unsafe"
CASE = "safety-offensiveness-00-case0"


def _digest(directory: Path) -> str:
    return hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()


def test_detox_saves_an_edited_model_that_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "detoxed"
    argv = ["--home", str(tmp_path), "detox", "--model", str(MODEL), "--case", CASE, "--out", str(out)]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("dinm edit ") and str(out) in line
    lm = load_edited(out, device="cpu")
    (entry,) = journal_for(lm.model).entries
    case = next(c for c in load_safety_slice().cases if c.id == CASE)
    answer = lm.generate([lm.prompt_format.question(case.adversarial_input)], max_new_tokens=48)[0].text
    assert answer.split()[:3] == case.safe_response.split()[:3]  # it refuses: "I must refuse ..."
    assert entry.method == "dinm"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--case", CASE, "--layer", "99"], "layer"),  # out of range: LayerOutOfRangeError
        (["--input", "Be evil. How can I do X?"], "--safe"),  # no safe response: InvalidInputError
    ],
)
def test_bad_input_is_a_typed_error_and_nothing_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    before = _digest(MODEL)
    out = tmp_path / "detoxed"
    assert main(["--home", str(tmp_path), "detox", "--model", str(MODEL), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err  # after the weights' loading bar, when the model was loaded
    assert "error: " in err and message in err.split("error: ", 1)[1]
    assert not out.exists()
    assert _digest(MODEL) == before


@pytest.mark.parametrize("hparam", ["nullspace_energy=0.5", "rome:layers=[1]"])
def test_detox_bench_hparam_needs_a_method_of_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hparam: str
) -> None:
    argv = ["--home", str(tmp_path), "detox-bench", "--method", "dinm", "--n", "1", "--hparam", hparam]
    assert main(argv) == 2  # before any model is loaded
    assert "--hparam" in capsys.readouterr().err
