"""``factagent kinship``, ``merge``, ``variants``, ``evolve`` and ``merge-gain`` through the CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from agent.cli import main

REPO = Path(__file__).resolve().parents[2]
GPT2 = REPO / "eval" / "world" / "models" / "gpt2-world"
SUMMARY_KEYS = {"fitness", "edit_reliability", "locality", "known_accuracy"}


def _noisy(out: Path, seed: int, scale: float = 1e-3) -> Path:
    out.mkdir()
    for f in GPT2.iterdir():
        if f.name != "model.safetensors":
            (out / f.name).write_bytes(f.read_bytes())
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        k: v + scale * torch.randn(v.shape, generator=gen)
        for k, v in load_file(str(GPT2 / "model.safetensors")).items()
    }
    save_file(tensors, str(out / "model.safetensors"))
    return out


def test_kinship_json_and_heatmap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _noisy(tmp_path / "a", 1), _noisy(tmp_path / "b", 2)
    plot = tmp_path / "k.png"
    assert (
        main(["--home", str(tmp_path), "kinship", str(a), str(b), "--base", str(GPT2), "--json", "--plot", str(plot)])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert {"pcc", "cosine", "euclidean", "per_layer"} <= set(out)
    assert set(out["per_layer"]) == {"layer 0", "layer 1", "layer 2", "layer 3", "other"}
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert (
        main(["--home", str(tmp_path), "kinship", str(a), str(b), "--base", str(GPT2), "--per-layer", "--no-plot"]) == 0
    )
    assert "layer 3" in capsys.readouterr().out


def test_typed_errors_reach_the_user_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _noisy(tmp_path / "a", 1)
    assert (
        main(["--home", str(tmp_path), "kinship", str(a), str(GPT2), "--base", str(tmp_path / "nope"), "--no-plot"])
        == 2
    )
    assert "no such model directory" in capsys.readouterr().err
    argv = ["--home", str(tmp_path), "merge", "--method", "ties", "--models", str(a), str(GPT2), "--base", str(GPT2)]
    assert main([*argv, "--out", str(a)]) == 2
    assert "already exists" in capsys.readouterr().err
    argv = [
        "--home",
        str(tmp_path),
        "variants",
        "--model",
        str(GPT2),
        "--method",
        "grace",
        "--out",
        str(tmp_path / "v"),
    ]
    assert main(argv) == 2
    assert "cannot be merged" in capsys.readouterr().err and not (tmp_path / "v").exists()
    bad = [*argv[:-4], "--hparam", "kl_factor", *argv[-2:]]  # rome, with an override that has no value
    assert main(bad) == 2
    assert "KEY=VALUE" in capsys.readouterr().err and not (tmp_path / "v").exists()


def test_merge_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _noisy(tmp_path / "a", 1), _noisy(tmp_path / "b", 2)
    out = tmp_path / "merged"
    argv = ["--home", str(tmp_path), "merge", "--method", "linear", "--models", str(a), str(b), "--out", str(out)]
    assert main(argv) == 0
    merged = load_file(str(out / "model.safetensors"))
    a_t, b_t = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    torch.testing.assert_close(
        merged["transformer.h.0.mlp.c_fc.weight"],
        (a_t["transformer.h.0.mlp.c_fc.weight"] + b_t["transformer.h.0.mlp.c_fc.weight"]) / 2,
    )


@pytest.mark.slow
def test_variants_evolve_and_merge_gain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = ["--home", str(tmp_path / "home")]
    pop = tmp_path / "pop"
    assert main([*home, "variants", "--model", str(GPT2), "--n", "3", "--edits", "2", "--out", str(pop)]) == 0
    meta = json.loads((pop / "population.json").read_text())
    ids = [e for v in meta["variants"] for e in v["edit_ids"]]
    assert len(ids) == 6 and len(set(ids)) == 6  # disjoint batches
    capsys.readouterr()

    out = tmp_path / "evolved"
    argv = [*home, "evolve", "--population", str(pop), "--k", "2", "--generations", "2", "--n-known", "20"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("best", "best_single_variant", "average_merge", "no_exploration"):
        assert set(summary[key]) >= SUMMARY_KEYS
    assert summary["best"]["fitness"] >= summary["best_single_variant"]["fitness"]  # variants are in the search
    lineage = json.loads((out / "lineage.json").read_text())
    assert set(lineage) == {"kinship exploration", "no exploration"}
    assert any(n["parents"] for n in lineage["kinship exploration"]["nodes"])
    assert (out / "lineage.png").is_file() and (out / "best" / "model.safetensors").is_file()
    assert main([*argv, "--out", str(out)]) == 2  # the output exists: nothing is touched

    gain = tmp_path / "gain"
    assert (
        main(
            [
                *home,
                "merge-gain",
                "--population",
                str(pop),
                "--pairs",
                "3",
                "--overlapping",
                "2",
                "--n-known",
                "20",
                "--out",
                str(gain),
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 5 and len(result["pairs"]) == 5 and (gain / "gain.png").is_file()
    # two-variant merges sharing a variant are kin (the shared delta); distinct variants are not. How kin the
    # merges are depends on the shared delta's share of their norms (with ROME's capped L-BFGS fit, stop 45:
    # 0.19 and 0.77, distinct variants within 0.01 of 0), so the test compares the two kinds
    distinct = max(abs(r["kinship"]) for r in result["pairs"][:3])
    assert distinct < 0.05 and min(r["kinship"] for r in result["pairs"][3:]) > 10 * distinct


def test_merge_regmean_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``merge --method regmean``: variants with Gram data merge; one without gets a typed error, no traceback."""
    from tools.edit import EditGram
    from tools.merge import save_edit_grams

    name = "transformer.h.0.mlp.c_proj.weight"
    a, b, old = _noisy(tmp_path / "a", 1), _noisy(tmp_path / "b", 2), _noisy(tmp_path / "old", 3)
    d_in = load_file(str(GPT2 / "model.safetensors"))[name].shape[0]  # Conv1D: (in, out)
    for i, path in enumerate((a, b)):
        keys = torch.randn(d_in, 3, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        gram = EditGram(keys=keys, shared=torch.eye(d_in, dtype=torch.float64), layout="in_out")
        save_edit_grams(path, {name: gram}, editor="memit")
    argv = ["--home", str(tmp_path), "merge", "--method", "regmean", "--base", str(GPT2)]
    assert main([*argv, "--models", str(a), str(b), "--regmean-scale", "2", "--out", str(tmp_path / "m")]) == 0
    assert "regmean merge of 2 models" in capsys.readouterr().out
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert main([*argv, "--models", str(a), str(old), "--out", str(tmp_path / "m2")]) == 2
    assert "no RegMean data" in capsys.readouterr().err and not (tmp_path / "m2").exists()
