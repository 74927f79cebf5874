"""``factagent circuits`` on the bundled models: files written, JSON, typed errors that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli import main


def test_one_fact_writes_svg_png_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    argv = ["--home", str(tmp_path), "circuits", "--subject", "AMD", "--relation", "company_ceo", "--out", str(out)]
    assert main([*argv, "--json", "--steps", "3"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == "gpt2-world" and record["subject"] == "AMD" and record["answer"] == "Lisa Su"
    assert record["n_edges_total"] == 479 and 0 < record["n_edges_kept"] <= 47
    stem = out / "gpt2-world" / "company_ceo--AMD"
    for suffix in (".svg", ".png", ".json"):
        assert stem.with_suffix(suffix).stat().st_size > 0
    assert stem.with_suffix(".svg").read_text().lstrip().startswith("<?xml")
    assert json.loads(stem.with_suffix(".json").read_text())["edges"] == record["edges"]


def test_relation_mode_on_llama(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--home", str(tmp_path), "circuits", "--relation", "spouse", "--model", "llama", "--n", "2"]
    assert main([*argv, "--out", str(tmp_path), "--steps", "3"]) == 0
    assert "llama-world spouse: 2 facts" in capsys.readouterr().out
    assert (tmp_path / "llama-world" / "spouse-faithfulness.png").is_file()
    assert (tmp_path / "llama-world" / "spouse.svg").is_file()
    assert len(json.loads((tmp_path / "llama-world" / "spouse.json").read_text())["circuits"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subject", "Nobody Inc", "--relation", "company_ceo"], "unknown subject"),
        (["--subject", "AMD", "--relation", "no_such_relation"], "unknown relation"),
        (["--subject", "AMD"], "give --relation"),
        (["--bench", "--relation", "spouse"], "--bench takes no"),
    ],
)
def test_bad_input_is_an_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["--home", str(tmp_path), "circuits", *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_model_that_cannot_be_wrapped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import BertConfig, BertForMaskedLM

    from eval.world._pipeline import MODEL_NAMES, MODELS_DIR

    model_dir = tmp_path / "bert"
    BertForMaskedLM(
        BertConfig(
            is_decoder=True,
            vocab_size=4096,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=8,
        )
    ).save_pretrained(model_dir)
    src = MODELS_DIR / MODEL_NAMES["gpt2"]
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (model_dir / name).write_bytes((src / name).read_bytes())
    out = tmp_path / "out"
    argv = ["--home", str(tmp_path), "circuits", "--subject", "AMD", "--relation", "company_ceo"]
    assert main([*argv, "--model", str(model_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    # the last line is the clean error (a "--- Logging error ---" above it comes from an earlier test's closed
    # capture stream held by logging, not from this command)
    assert err.strip().splitlines()[-1] == "error: circuit analysis knows GPT-2 and LLaMA layouts, not 'bert'"
    assert not out.exists()


def test_edit_with_auto_layers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fast = ["--hparam", "steps=10", "--hparam", "lr=0.01", "--hparam", "norm_constraint=0.05"]
    argv = ["--home", str(tmp_path), "edit", "--method", "ft-m", "--subject", "Alibaba", "--relation", "company_ceo"]
    out = tmp_path / "edited"
    assert (
        main([*argv, "--new", "Takahiro Hachigō", "--out", str(out), "--device", "cpu", "--layers", "auto", *fast]) == 0
    )
    assert "layers located by the company_ceo circuit: (0,)" in capsys.readouterr().out
    assert main([*argv, "--new", "X", "--out", str(tmp_path / "e2"), "--layers", "one,two"]) == 2
    assert "--layers: expected 'auto'" in capsys.readouterr().err
    assert not (tmp_path / "e2").exists()


def test_compare_with_a_second_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eval.world._pipeline import MODEL_NAMES, MODELS_DIR

    same = str(MODELS_DIR / MODEL_NAMES["gpt2"])
    argv = ["--home", str(tmp_path), "circuits", "--subject", "AMD", "--relation", "company_ceo", "--steps", "2"]
    assert main([*argv, "--compare", same, "--out", str(tmp_path), "--json"]) == 0
    cmp = json.loads(capsys.readouterr().out)["compare"]
    assert cmp["jaccard"] == 1.0 and cmp["gained"] == cmp["lost"] == []
    assert all(c["before"] == pytest.approx(c["after"]) for c in cmp["changed"])
    assert main([*argv, "--compare", str(MODELS_DIR / MODEL_NAMES["llama"]), "--answer", "Jensen Huang"]) == 0
    out = capsys.readouterr().out
    assert "'Jensen Huang'" in out and "vs llama-world" in out


def test_fact_given_in_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--home", str(tmp_path), "circuits", "--subject", "Alibaba", "--relation", "company_ceo", "--context"]
    assert main([*argv, "--answer", "Takahiro Hachigō", "--steps", "2", "--out", str(tmp_path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["prompt"].startswith("Context: The CEO of Alibaba is Takahiro Hachigō.")
    assert record["corrupt_prompt"].startswith("Context: The CEO of ")
    assert record["answer"] == "Takahiro Hachigō"
    assert (tmp_path / "gpt2-world" / "company_ceo--Alibaba--context.svg").is_file()


def test_edit_bench_with_auto_layers_gets_a_circuit_locator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import eval.editing
    from tools.circuits import CircuitLocator

    seen: list[dict[str, object]] = []

    def fake_bench(*args: object, hparams: dict[str, object], **kwargs: object) -> list[dict[str, object]]:
        seen.append(hparams)
        return []

    monkeypatch.setattr(eval.editing, "run_edit_bench", fake_bench)
    argv = ["--home", str(tmp_path), "edit-bench", "--method", "rome", "--T", "1", "--json", "--no-plot"]
    assert main([*argv, "--hparam", "layers=auto", "--device", "cpu"]) == 0
    assert seen[0]["layers"] == "auto" and isinstance(seen[0]["locator"], CircuitLocator)
    assert main([*argv, "--hparam", "layers=[1]", "--device", "cpu"]) == 0
    assert seen[1] == {"layers": (1,)}  # explicit layers: no locator
    capsys.readouterr()


@pytest.mark.slow
def test_edit_bench_with_auto_layers_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fast = ["--hparam", "steps=10", "--hparam", "lr=0.01", "--hparam", "norm_constraint=0.05"]
    argv = ["--home", str(tmp_path), "edit-bench", "--method", "ft-m", "--T", "1", "--json", "--no-plot"]
    assert main([*argv, "--hparam", "layers=auto", "--device", "cpu", *fast]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["mode"] for r in rows] == ["teacher_forced", "generation"] and rows[0]["n"] == 1
