"""Model Kinship: figures against a NumPy reference, per-layer grouping, streaming over shards, typed errors."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tools.errors import InvalidInputError, ModelLoadError, ModelMismatchError, NonFiniteWeightError
from tools.kinship import kinship, layer_of, open_sources, plot_kinship

REPO = Path(__file__).resolve().parents[3]
SHAPES = {"h.0.w": (4, 3), "h.1.w": (5,), "wte": (6, 2)}


def _write(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    path.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))
    return path


@pytest.fixture
def trio(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, dict[str, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(0)
    base = {k: torch.randn(s, generator=gen) for k, s in SHAPES.items()}
    a = {k: v + 0.1 * torch.randn(v.shape, generator=gen) for k, v in base.items()}
    b = {k: v + 0.5 * (a[k] - v) + 0.1 * torch.randn(v.shape, generator=gen) for k, v in base.items()}
    tensors = {"base": base, "a": a, "b": b}
    return _write(tmp_path / "base", base), _write(tmp_path / "a", a), _write(tmp_path / "b", b), tensors


def _flat_delta(t: dict[str, torch.Tensor], base: dict[str, torch.Tensor], keys: list[str]) -> np.ndarray:
    return np.concatenate([(t[k] - base[k]).double().flatten().numpy() for k in keys])


def test_whole_model_and_per_layer_match_numpy(trio: tuple) -> None:
    base, a, b, t = trio
    report = kinship([a, b], base)
    pair = report.pairs[0]
    keys = sorted(SHAPES)
    da, db = _flat_delta(t["a"], t["base"], keys), _flat_delta(t["b"], t["base"], keys)
    assert pair.whole.pcc == pytest.approx(np.corrcoef(da, db)[0, 1], abs=1e-9)
    assert pair.whole.cosine == pytest.approx(da @ db / np.linalg.norm(da) / np.linalg.norm(db), abs=1e-9)
    assert pair.whole.euclidean == pytest.approx(np.linalg.norm(da - db), abs=1e-9)
    assert pair.whole.n == da.size
    assert list(pair.per_layer) == ["layer 0", "layer 1", "other"]
    la, lb = _flat_delta(t["a"], t["base"], ["h.1.w"]), _flat_delta(t["b"], t["base"], ["h.1.w"])
    assert pair.per_layer["layer 1"].pcc == pytest.approx(np.corrcoef(la, lb)[0, 1], abs=1e-9)
    out = report.to_json()
    assert {"pcc", "cosine", "euclidean", "per_layer"} <= set(out)
    assert json.loads(json.dumps(out))["per_layer"]["other"]["n"] == 12


def test_self_and_opposite_kinship(tmp_path: Path, trio: tuple) -> None:
    base, a, _, t = trio
    neg = _write(tmp_path / "neg", {k: 2 * t["base"][k] - t["a"][k] for k in SHAPES})
    same = shutil.copytree(a, tmp_path / "a2")
    report = kinship([a, same, neg], base)
    assert report.pair(str(a), str(same)).whole.pcc == pytest.approx(1.0)
    assert report.pair(str(a), str(same)).whole.euclidean == pytest.approx(0.0, abs=1e-9)
    assert report.pair(str(a), str(neg)).whole.cosine == pytest.approx(-1.0)
    assert len(report.pairs) == 3


def test_zero_delta_has_no_direction(tmp_path: Path, trio: tuple) -> None:
    base, a, _, _ = trio
    copy = shutil.copytree(base, tmp_path / "copy")
    whole = kinship([a, copy], base).pairs[0].whole
    assert math.isnan(whole.pcc) and math.isnan(whole.cosine)
    assert kinship([a, copy], base).to_json()["pcc"] is None


def test_sharded_weights_are_streamed(tmp_path: Path, trio: tuple) -> None:
    base, a, b, _ = trio
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    tensors = load_file(str(a / "model.safetensors"))
    weight_map = {}
    for i, (name, value) in enumerate(sorted(tensors.items())):
        save_file({name: value}, str(sharded / f"part-{i}.safetensors"))
        weight_map[name] = f"part-{i}.safetensors"
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert kinship([sharded, b], base).pairs[0].whole == kinship([a, b], base).pairs[0].whole


def test_layer_of() -> None:
    assert layer_of("transformer.h.3.mlp.c_fc.weight") == "layer 3"
    assert layer_of("model.layers.12.self_attn.q_proj.weight") == "layer 12"
    assert layer_of("transformer.wte.weight") == "other"


def test_bad_input_is_typed(tmp_path: Path, trio: tuple) -> None:
    base, a, b, t = trio
    with pytest.raises(ModelLoadError, match="no such model directory"):
        kinship([a, b], tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"no model\.safetensors"):
        kinship([a, b], tmp_path / "empty")
    shaped = _write(tmp_path / "shaped", {**t["a"], "h.1.w": torch.zeros(6)})
    with pytest.raises(ModelMismatchError, match="shape"):
        kinship([a, shaped], base)
    fewer = _write(tmp_path / "fewer", {k: v for k, v in t["a"].items() if k != "wte"})
    with pytest.raises(ModelMismatchError, match="different tensors"):
        kinship([a, fewer], base)
    nan = _write(tmp_path / "nan", {**t["a"], "h.1.w": torch.full((5,), float("nan"))})
    with pytest.raises(NonFiniteWeightError, match=r"h\.1\.w"):
        kinship([a, nan], base)
    with pytest.raises(InvalidInputError, match="at least two"):
        kinship([a], base)
    assert issubclass(ModelMismatchError, InvalidInputError)


def test_heatmap_png(tmp_path: Path, trio: tuple) -> None:
    base, a, b, _ = trio
    out = plot_kinship(kinship([a, b, base], base), tmp_path / "plots" / "k.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_reference_size_models_in_under_5_seconds(tmp_path: Path, arch: str) -> None:
    ref = REPO / "eval" / "world" / "models" / f"{arch}-world"
    tensors = load_file(str(ref / "model.safetensors"))
    gen = torch.Generator().manual_seed(1)
    dirs = []
    for name in ("x", "y"):
        noisy = {k: v + 1e-3 * torch.randn(v.shape, generator=gen) for k, v in tensors.items()}
        dirs.append(_write(tmp_path / name, noisy))
    assert len(open_sources([ref, *dirs])[0].shapes) == len(tensors)
    start = time.perf_counter()
    report = kinship(dirs, ref)
    assert time.perf_counter() - start < 5.0
    assert abs(report.pairs[0].whole.pcc) < 0.05  # independent noise is unrelated
    assert len(report.pairs[0].per_layer) == 5  # 4 layers + embeddings/norms
