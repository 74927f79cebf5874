"""Merging through mergekit on both reference layouts: exact arithmetic, atomic output, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tools.errors import InvalidInputError, ModelMismatchError, NonFiniteWeightError, OutputExistsError
from tools.merge import MergeSpec, merge_models

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "eval" / "world" / "models"


def _variant(ref: Path, out: Path, seed: int, nan: bool = False) -> Path:
    """A copy of ``ref`` with a random delta on every 2-D tensor of layer 1 (and the config and tokenizer)."""
    out.mkdir()
    for f in ref.iterdir():
        if f.name != "model.safetensors":
            (out / f.name).write_bytes(f.read_bytes())
    gen = torch.Generator().manual_seed(seed)
    tensors = load_file(str(ref / "model.safetensors"))
    for name, value in tensors.items():
        if ".1." in name and value.dim() == 2:
            tensors[name] = value + 0.01 * torch.randn(value.shape, generator=gen)
    if nan:
        name = next(iter(tensors))
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, str(out / "model.safetensors"))
    return out


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def layout(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    ref = MODELS / f"{request.param}-world"
    tmp = tmp_path_factory.mktemp(request.param)
    return ref, _variant(ref, tmp / "a", 1), _variant(ref, tmp / "b", 2)


def test_task_arithmetic_and_linear_are_exact_on_both_layouts(layout: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from tools.lm import HFLanguageModel

    ref, a, b = layout
    base_t, a_t, b_t = (load_file(str(p / "model.safetensors")) for p in (ref, a, b))
    ta = merge_models([a, b], tmp_path / "ta", base=ref)
    lin = merge_models([a, b], tmp_path / "lin", spec=MergeSpec(method="linear"))
    ta_t, lin_t = load_file(str(ta / "model.safetensors")), load_file(str(lin / "model.safetensors"))
    assert set(ta_t) == set(base_t)
    for name in base_t:
        expected = base_t[name] + (a_t[name] - base_t[name]) + (b_t[name] - base_t[name])
        torch.testing.assert_close(ta_t[name], expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(lin_t[name], (a_t[name] + b_t[name]) / 2, atol=1e-6, rtol=0)
    assert (ta / "factagent.json").is_file()
    lm = HFLanguageModel.load(ta, device="cpu")
    assert lm.generate(["The capital of France is"], max_new_tokens=2)[0].text is not None
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary directory left


def test_ties_and_slerp_run(layout: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ref, a, b = layout
    ties = merge_models([a, b], tmp_path / "ties", base=ref, spec=MergeSpec(method="ties", density=0.5))
    slerp = merge_models([a, b], tmp_path / "slerp", spec=MergeSpec(method="slerp", t=0.0))
    base_t, a_t, ties_t = (load_file(str(p / "model.safetensors")) for p in (ref, a, ties))
    name = next(n for n in base_t if ".1." in n and base_t[n].dim() == 2)
    kept = (ties_t[name] != base_t[name]).float().mean().item()
    assert 0.3 < kept < 0.9  # TIES trims each delta to half, the union of two halves survives
    torch.testing.assert_close(load_file(str(slerp / "model.safetensors"))[name], a_t[name])  # t = 0: model a


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    gpt2, llama = MODELS / "gpt2-world", MODELS / "llama-world"
    a = _variant(gpt2, tmp_path / "a", 1)
    b = _variant(gpt2, tmp_path / "b", 2)
    nan = _variant(gpt2, tmp_path / "nan", 3, nan=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        merge_models([a, b], out, base=gpt2)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(ModelMismatchError):
        merge_models([a, _variant(llama, tmp_path / "l", 1)], tmp_path / "o1", base=gpt2)
    with pytest.raises(NonFiniteWeightError):
        merge_models([a, nan], tmp_path / "o2", base=gpt2)
    with pytest.raises(InvalidInputError, match="needs --base"):
        merge_models([a, b], tmp_path / "o3", spec=MergeSpec(method="ties"))
    with pytest.raises(InvalidInputError, match="density"):
        merge_models([a, b], tmp_path / "o4", base=gpt2, spec=MergeSpec(method="ties", density=0.0))
    with pytest.raises(InvalidInputError, match="twice"):
        merge_models([a, a], tmp_path / "o5", base=gpt2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "l", "nan", "out"]
