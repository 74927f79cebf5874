"""RegMean merging of edited variants: exact against a direct joint solve on both layouts, the Gram weighting
matters, the shared part counted once or N times, atomic output and typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tools.edit import EditGram
from tools.errors import InvalidInputError, OutputExistsError
from tools.merge import MergeSpec, load_edit_grams, merge_models, regmean_merge, save_edit_grams

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "eval" / "world" / "models"
EDITED = {"gpt2": "transformer.h.0.mlp.c_proj.weight", "llama": "model.layers.0.mlp.down_proj.weight"}


def _spd(n: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(n, 2 * n, generator=gen, dtype=torch.float64)
    return a @ a.T / (2 * n) + 0.1 * torch.eye(n, dtype=torch.float64)


class _Setup:
    """A base, a shared ``S = λ C`` and per variant keys ``K_i`` and residuals ``R_i`` of one edited weight."""

    def __init__(self, kind: str, n: int, seed: int = 0) -> None:
        self.ref = MODELS / f"{kind}-world"
        self.name = EDITED[kind]
        self.layout = "in_out" if kind == "gpt2" else "out_in"
        self.base = load_file(str(self.ref / "model.safetensors"))
        w = self.base[self.name]
        self.d_in, self.d_out = (w.shape[0], w.shape[1]) if self.layout == "in_out" else (w.shape[1], w.shape[0])
        gen = torch.Generator().manual_seed(seed)
        self.shared = 50.0 * _spd(self.d_in, gen)
        self.keys = [torch.randn(self.d_in, 4, generator=gen, dtype=torch.float64) for _ in range(n)]
        self.resid = [torch.randn(self.d_out, 4, generator=gen, dtype=torch.float64) for _ in range(n)]

    def delta(self, i: int) -> torch.Tensor:
        """MEMIT's update of variant ``i`` in ``(out, in)``: ``R_i K_iᵀ (S + K_i K_iᵀ)⁻¹``."""
        k = self.keys[i]
        return torch.linalg.solve(self.shared + k @ k.T, k @ self.resid[i].T).T

    def joint(self, shared_times: int) -> torch.Tensor:
        """The merged weight a joint solve of all variants' keys gives, in the parameter's layout."""
        num = torch.stack([r @ k.T for r, k in zip(self.resid, self.keys, strict=True)]).sum(0)  # (out, in)
        den = shared_times * self.shared + torch.stack([k @ k.T for k in self.keys]).sum(0)
        upd = torch.linalg.solve(den, num.T).T
        w0 = self.base[self.name].double()
        return (w0 + (upd.T if self.layout == "in_out" else upd)).float()

    def write(self, root: Path, i: int, with_grams: bool = True, shared: torch.Tensor | None = None) -> Path:
        out = root / f"v{i:02d}"
        out.mkdir(parents=True)
        for f in self.ref.iterdir():
            if f.name in ("config.json", "tokenizer.json", "tokenizer_config.json", "factagent.json"):
                (out / f.name).write_bytes(f.read_bytes())
        tensors = dict(self.base)
        d = self.delta(i)
        tensors[self.name] = (self.base[self.name].double() + (d.T if self.layout == "in_out" else d)).float()
        save_file(tensors, str(out / "model.safetensors"))
        if with_grams:
            gram = EditGram(keys=self.keys[i], shared=self.shared if shared is None else shared, layout=self.layout)
            save_edit_grams(out, {self.name: gram}, editor="memit")
        return out


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_regmean_equals_the_joint_solve(kind: str, tmp_path: Path) -> None:
    setup = _Setup(kind, 3)
    variants = [setup.write(tmp_path / "pop", i) for i in range(3)]
    once = load_file(str(regmean_merge(variants, tmp_path / "once", base=setup.ref) / "model.safetensors"))
    torch.testing.assert_close(once[setup.name], setup.joint(1), atol=2e-5, rtol=1e-4)
    plain = regmean_merge(variants, tmp_path / "plain", base=setup.ref, shared_scale=None)
    torch.testing.assert_close(
        load_file(str(plain / "model.safetensors"))[setup.name], setup.joint(3), atol=2e-5, rtol=1e-4
    )
    scaled = regmean_merge(variants, tmp_path / "s2", base=setup.ref, shared_scale=2.0)
    torch.testing.assert_close(
        load_file(str(scaled / "model.safetensors"))[setup.name], setup.joint(2), atol=2e-5, rtol=1e-4
    )
    for name, value in setup.base.items():  # the tensors no variant changed stay the base's
        if name != setup.name:
            assert torch.equal(once[name], value)
    assert (tmp_path / "once" / "factagent.json").is_file()
    assert not (tmp_path / "once" / "regmean.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_gram_weighting_matters(tmp_path: Path) -> None:
    """Without the Gram matrices (the plain sum of deltas, task arithmetic) the merge is far from the joint
    solve; with one variant RegMean returns that variant."""
    setup = _Setup("llama", 3)
    variants = [setup.write(tmp_path / "pop", i) for i in range(3)]
    summed = merge_models(variants, tmp_path / "sum", base=setup.ref, spec=MergeSpec(method="task_arithmetic"))
    joint = setup.joint(1)
    w0 = setup.base[setup.name]
    sum_err = (load_file(str(summed / "model.safetensors"))[setup.name] - joint).norm() / (joint - w0).norm()
    assert sum_err > 0.05
    one = regmean_merge(variants[:1], tmp_path / "one", base=setup.ref)
    alone = load_file(str(variants[0] / "model.safetensors"))[setup.name]
    torch.testing.assert_close(load_file(str(one / "model.safetensors"))[setup.name], alone, atol=2e-6, rtol=1e-5)


def test_grams_round_trip(tmp_path: Path) -> None:
    setup = _Setup("gpt2", 1)
    path = setup.write(tmp_path, 0)
    loaded = load_edit_grams(path)[setup.name]
    assert loaded.layout == "in_out" and torch.equal(loaded.keys, setup.keys[0])
    torch.testing.assert_close(loaded.gram(), setup.shared + setup.keys[0] @ setup.keys[0].T)


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    setup = _Setup("llama", 3)
    a, b = setup.write(tmp_path / "pop", 0), setup.write(tmp_path / "pop", 1)
    old = setup.write(tmp_path / "old", 2, with_grams=False)  # a population saved before RegMean data
    other = setup.write(tmp_path / "other", 2, shared=2.0 * setup.shared)  # solved against other statistics
    out = tmp_path / "out"
    with pytest.raises(InvalidInputError, match="no RegMean data"):
        regmean_merge([a, old], out, base=setup.ref)
    with pytest.raises(InvalidInputError, match="shared part"):
        regmean_merge([a, other], out, base=setup.ref)
    with pytest.raises(InvalidInputError, match="positive"):
        regmean_merge([a, b], out, base=setup.ref, shared_scale=0.0)
    with pytest.raises(InvalidInputError, match="twice"):
        regmean_merge([a, a], out, base=setup.ref)
    assert not out.exists()
    out.mkdir()
    with pytest.raises(OutputExistsError):
        regmean_merge([a, b], out, base=setup.ref)
    assert list(out.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("method", ["memit", "alphaedit"])
def test_editors_report_the_gram_their_update_solves(method: str) -> None:
    """The identity RegMean relies on, on a real solve (GPT-2's Conv1D): ``δ G = R Kᵀ``, so ``δ G`` has its rows
    in the span of the recorded keys; without the Gram (``δ`` itself) it does not."""
    from tests.tools.edit._helpers import load_models
    from tools.edit import EditRequest, WeightDelta, get_editor

    lm = load_models()["gpt2-world"]
    corpus = ("The CEO of ABB Group is Ulrich Spiesshofer.",) * 20
    fast = {"v_num_grad_steps": 3, "n_context_templates": 1, "preserve_weight": 0.0, "corpus_phrasings": 0}
    reqs = [
        EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang", "company_ceo"),
        EditRequest("Siemens's CEO is", "Siemens", "Ada Lovelace", "Joe Kaeser", "company_ceo"),
    ]
    assert not get_editor(method, corpus=corpus, **fast).compute(lm, reqs[:1]).info["grams"]  # off by default
    delta = get_editor(method, corpus=corpus, record_grams=True, **fast).compute(lm, reqs)
    assert isinstance(delta, WeightDelta)
    grams = delta.info["grams"]
    assert set(grams) == set(delta.updates) and len(grams) == 2
    for name, gram in grams.items():
        assert gram.layout == "in_out"
        d = delta.dense(name).double().T  # (out, in)

        def outside(g: torch.Tensor, keys: torch.Tensor = gram.keys, d: torch.Tensor = d) -> float:
            m = d @ g
            return float((m - m @ keys @ torch.linalg.pinv(keys)).norm() / m.norm())

        assert outside(gram.gram()) < 1e-4
        assert outside(torch.eye(gram.shared.shape[0], dtype=torch.float64)) > 1e-2
