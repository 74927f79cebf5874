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


def test_concept_bench_hparams_and_alphaedits_preserved_prompts() -> None:
    from agent.cli._args import key_values as _hparams
    from agent.cli._concept import _method_hparams
    from eval.concepts import world_concept_cases
    from eval.world import DATA_DIR
    from tools.errors import InvalidInputError
    from tools.lm import PromptFormat

    assert _hparams(["layers=[0]", "kl_factor=0.5", "name=abc"]) == {"layers": [0], "kl_factor": 0.5, "name": "abc"}
    with pytest.raises(InvalidInputError):
        _hparams(["layers"])
    fmt = PromptFormat()
    cases = world_concept_cases(DATA_DIR, fmt)
    base = {"layers": [0]}
    assert _method_hparams("ROME", "world", cases, base, True, fmt) == base
    assert _method_hparams("ALPHAEDIT", "file.json", cases, base, True, fmt) == base
    assert _method_hparams("alphaedit", "world", cases, base, False, fmt) == base
    given = _method_hparams("ALPHAEDIT", "world", cases, base, True, fmt)
    locality = {p for c in cases for p, _ in c.locality}
    assert given["layers"] == [0] and given["preserve_prompts"]
    assert not any(p.startswith(tuple(locality)) for p, _ in given["preserve_prompts"])
    rome = _method_hparams("ROME", "world", cases, base | {"preserve_prompt_weight": 10.0}, True, fmt)
    assert rome["preserve_prompts"] == given["preserve_prompts"]  # ROME takes them when its weight is on
    assert "preserve_prompts" not in _method_hparams(
        "ROME", "world", cases, base | {"preserve_prompt_weight": 0}, True, fmt
    )
    asked = _method_hparams("ROME", "world", cases, base | {"preserve_prompt_weight": 1.0}, True, fmt, True)
    extra = asked["preserve_prompts"][len(rome["preserve_prompts"]) :]
    assert asked["preserve_prompts"][: len(rome["preserve_prompts"])] == rome["preserve_prompts"]
    assert len(extra) == 14 and not {p.strip() for p, _ in extra} & {p.strip() for p in locality}
