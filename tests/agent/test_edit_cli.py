"""``factagent edit-bench`` and ``factagent edit`` on the bundled GPT-2 world model (FT-M with a few steps)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from agent.cli import main
from eval.editing._runner import EXTRA_KEYS, REQUIRED_KEYS
from tests.conftest import REPO
from tools.edit import editor_names, journal_for, load_edited

FAST_FT = ["--hparam", "steps=10", "--hparam", "lr=0.01", "--hparam", "norm_constraint=0.05"]


@pytest.mark.slow
def test_edit_bench_json_is_only_the_list_of_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--home", str(tmp_path), "edit-bench", "--method", "ft-m", "--T", "1", "--json", "--device", "cpu"]
    assert main([*argv, *FAST_FT, "--plot", str(tmp_path / "p.png")]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and [r["mode"] for r in rows] == ["teacher_forced", "generation"]
    for row in rows:
        assert set(row) == set(REQUIRED_KEYS) | set(EXTRA_KEYS)
        assert row["method"] == "ft-m" and row["T"] == row["n"] == 1 and row["model"] == "gpt2-world"
    assert (tmp_path / "p.png").is_file() == (importlib.util.find_spec("matplotlib") is not None)


def test_edit_writes_a_model_that_answers_the_new_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "edited"
    argv = ["--home", str(tmp_path), "edit", "--method", "ft-m", "--subject", "Alibaba", "--relation", "company_ceo"]
    assert main([*argv, "--new", "Takahiro Hachigō", "--out", str(out), "--device", "cpu", *FAST_FT]) == 0
    line = capsys.readouterr().out.strip()
    assert "Daniel Zhang" in line and "Takahiro Hachigō" in line and str(out) in line
    lm = load_edited(out, device="cpu")
    assert lm.generate(["Alibaba's CEO is"])[0].text.startswith("Takahiro Hachigō")

    # a second edit on the saved model stacks on the first (same journal)
    argv = ["--home", str(tmp_path), "edit", "--model", str(out), "--method", "ft-m", "--subject", "Nokia"]
    argv += ["--relation", "company_ceo", "--new", "Jensen Huang", "--out", str(tmp_path / "twice"), *FAST_FT]
    assert main([*argv, "--device", "cpu"]) == 0
    twice = load_edited(tmp_path / "twice", device="cpu")
    assert len(journal_for(twice.model).entries) == 2
    answers = [g.text for g in twice.generate(["Alibaba's CEO is", "Nokia's CEO is"])]
    assert answers[0].startswith("Takahiro Hachigō") and answers[1].startswith("Jensen Huang")


@pytest.mark.parametrize("model", ["nope", "empty"])
def test_edit_with_a_bad_model_directory(tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    argv = ["--home", str(tmp_path), "edit", "--model", str(tmp_path / model), "--subject", "Alibaba"]
    assert main([*argv, "--relation", "company_ceo", "--new", "X", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert ("does not exist" in err) if model == "nope" else ("no model weights" in err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["edit-bench", "edit"])
def test_unknown_method_lists_the_methods(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--home", str(tmp_path), command, "--method", "rome,magic" if command == "edit-bench" else "magic"]
    if command == "edit":
        argv += ["--subject", "Alibaba", "--relation", "company_ceo", "--new", "X", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown editing method 'magic'" in err
    assert all(name in err for name in editor_names())


def test_unknown_relation_lists_the_relations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--home", str(tmp_path), "edit", "--subject", "Alibaba", "--relation", "ceo_of"]
    assert main([*argv, "--new", "X", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown relation 'ceo_of'" in err and "company_ceo" in err


@pytest.mark.parametrize("t_values", ["0", "1,x", ""])
def test_bad_t_values_are_usage_errors(t_values: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["edit-bench", "--T", t_values])
    assert info.value.code == 2
    assert "--T" in capsys.readouterr().err


def test_edit_table_reads_cached_cells_and_rejects_bad_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid"
    (out / "cells").mkdir(parents=True)
    rows = [
        {"mode": m, "reliability": 1.0, "generalization": 0.8, "locality": 0.9, "seconds_per_edit": 0.5}
        for m in ("generation", "teacher_forced")
    ]
    record = {"method": "grace", "model": "llama", "T": 1, "rows": rows, "wall_seconds": 2.0, "peak_rss_mb": 400.0}
    (out / "cells" / "llama__grace__T1.json").write_text(json.dumps(record))
    (out / "known_edits.json").write_text(json.dumps({"llama": {"pool": 5, "known": 4, "known_world": 2}}))
    argv = ["--home", str(tmp_path), "edit-table", "--out", str(out), "--methods", "grace", "--models", "llama"]
    assert main([*argv, "--T", "1"]) == 0
    assert "| grace | 1.00 | 0.80 | 0.90 | 0.90 |" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["cells"][0]["method"] == "grace"
    assert main([*argv[:-1], "mistral"]) == 2
    assert "--models" in capsys.readouterr().err


@pytest.mark.slow
def test_edit_bench_world_zh_rows_carry_their_category(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--home", str(tmp_path), "edit-bench", "--dataset", "world-zh", "--method", "ft-m", "--T", "1"]
    argv += ["--n", "1", "--select", "all", "--edit-mode", "single", "--json", "--device", "cpu", *FAST_FT]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    categories = {r["category"] for r in rows}
    assert {"poetry_next", "phonetic", "geography_capital", "logic_trap"} <= categories
    assert all(r["n"] == 1 and r["method"] == "ft-m" for r in rows) and len(rows) == 2 * len(categories)


def test_edit_bench_world_lifelong_is_the_world_edits_then_the_lifelong_pool() -> None:
    from agent.cli._edit import _cases
    from eval.world import DATA_DIR, load_world

    world = load_world(DATA_DIR)
    model_dir = REPO / "eval" / "world" / "models" / "gpt2-world"
    plain, pool = _cases("world", world, model_dir), _cases("world-lifelong", world, model_dir)
    assert [c.id for c in pool[: len(plain)]] == [c.id for c in plain]  # the world's 600 first, unchanged
    assert len(pool) == 2105 and len({c.id for c in pool}) == len(pool)  # T=1000 has room (1,943 known on GPT-2)
    assert all(c.locality for c in pool[len(plain) :])
