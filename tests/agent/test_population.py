"""``build_variants``: batched editors (MEMIT, AlphaEdit) solve a variant's edits at once, sequential ones
(ROME, FT) edit by edit, and every saved variant is the base plus exactly the deltas applied to it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from agent.cli._population import BATCHED, MERGEABLE, build_variants, load_population
from tests.conftest import REPO
from tools.edit import EditHandle, EditRequest, WeightDelta, journal_for
from tools.lm import LocalLanguageModel

GPT2 = REPO / "eval" / "world" / "models" / "gpt2-world"
LLAMA = REPO / "eval" / "world" / "models" / "llama-world"
PARAM = "transformer.h.1.mlp.c_proj.bias"


class _Recording:
    """A weight editor that adds a per-call constant to one bias and records each call's batch size."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def compute(self, model: LocalLanguageModel, requests: Sequence[EditRequest]) -> WeightDelta:
        self.batches.append(len(requests))
        shape = dict(model.model.named_parameters())[PARAM].shape
        return WeightDelta(method="recording", requests=tuple(requests), updates={PARAM: torch.full(shape, 0.25)})

    def apply(self, model: LocalLanguageModel, delta: WeightDelta) -> EditHandle:
        return journal_for(model.model).apply(delta)


@pytest.mark.parametrize("method", ["alphaedit", "memit", "rome"])
def test_batched_editors_edit_a_variant_at_once(method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    editor = _Recording()

    def fake_get_editor(name: str, **_: Any) -> _Recording:
        assert name == method
        return editor

    monkeypatch.setattr("tools.edit.get_editor", fake_get_editor)
    pop = build_variants(GPT2, tmp_path / "pop", n=2, edits=3, method=method, cache_dir=tmp_path / "stats")
    assert editor.batches == ([3, 3] if method in BATCHED else [1] * 6)
    assert load_population(tmp_path / "pop").method == method and len(pop.edit_ids) == 6
    base = load_file(str(GPT2 / "model.safetensors"))
    for path in pop.paths:  # each variant starts from the base: its own batch only, every call applied once
        saved = load_file(str(path / "model.safetensors"))
        calls = 1 if method in BATCHED else 3
        torch.testing.assert_close(saved[PARAM], base[PARAM] + 0.25 * calls)
        assert all(torch.equal(saved[k], base[k]) for k in base if k != PARAM)


def test_alphaedit_is_mergeable_and_batched() -> None:
    assert {"alphaedit", "memit"} <= BATCHED <= MERGEABLE


@pytest.mark.slow
def test_alphaedit_variants_change_only_its_layers(tmp_path: Path) -> None:
    """A real AlphaEdit population on the LLaMA reference model: the saved variants differ from the base only in
    the MLP output projections of AlphaEdit's layers, by an update of rank <= the batch size."""
    from tools.edit import family_of, load_edited
    from tools.edit._alphaedit import AlphaEditHyperParams

    pop = build_variants(LLAMA, tmp_path / "pop", n=2, edits=2, method="alphaedit", cache_dir=tmp_path / "stats")
    meta = json.loads((tmp_path / "pop" / "population.json").read_text())
    assert meta["method"] == "alphaedit" and len({e for v in meta["variants"] for e in v["edit_ids"]}) == 4
    family = family_of(load_edited(LLAMA).model)
    layers = AlphaEditHyperParams.for_family(family).layers
    expected = {family.path(family.mlp_out, layer) + ".weight" for layer in layers}
    base = load_file(str(LLAMA / "model.safetensors"))
    for path in pop.paths:
        saved = load_file(str(path / "model.safetensors"))
        changed = {k for k in base if not torch.equal(saved[k], base[k])}
        assert changed and changed <= expected
        for k in changed:
            assert torch.linalg.matrix_rank((saved[k] - base[k]).double(), rtol=1e-4) <= 2


class _WithGrams(_Recording):
    """As :class:`_Recording`, and its delta carries a Gram record (what MEMIT / AlphaEdit report)."""

    def compute(self, model: LocalLanguageModel, requests: Sequence[EditRequest]) -> WeightDelta:
        from tools.edit import EditGram

        delta = super().compute(model, requests)
        gram = EditGram(
            keys=torch.ones(4, len(requests), dtype=torch.float64), shared=torch.eye(4, dtype=torch.float64)
        )
        return WeightDelta(
            method=delta.method, requests=delta.requests, updates=delta.updates, info={"grams": {PARAM: gram}}
        )


def test_batched_variants_keep_their_regmean_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.merge import REGMEAN_FILES, load_edit_grams

    monkeypatch.setattr("tools.edit.get_editor", lambda name, **_: _WithGrams())
    pop = build_variants(GPT2, tmp_path / "pop", n=2, edits=3, method="memit", cache_dir=tmp_path / "stats")
    for path in pop.paths:
        assert all((path / f).is_file() for f in REGMEAN_FILES)
        assert load_edit_grams(path)[PARAM].keys.shape == (4, 3)  # one batch of 3: its keys
    monkeypatch.setattr("tools.edit.get_editor", lambda name, **_: _Recording())
    old = build_variants(GPT2, tmp_path / "old", n=1, edits=2, method="memit", cache_dir=tmp_path / "stats")
    assert not any((old.paths[0] / f).exists() for f in REGMEAN_FILES)  # no Gram data reported: none written


def test_population_records_its_editor_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hyperparameter overrides a population was built with are in ``population.json`` and read back; a file
    written before they were recorded reads as no overrides, and a malformed entry is a WorldFormatError."""
    from tools.errors import WorldFormatError

    seen: list[dict[str, Any]] = []

    def fake_get_editor(name: str, **settings: Any) -> _Recording:
        seen.append({k: v for k, v in settings.items() if k not in ("corpus", "cache_dir")})
        return _Recording()

    monkeypatch.setattr("tools.edit.get_editor", fake_get_editor)
    hparams = {"v_optimizer": "adam", "kl_factor": 1.0}
    build_variants(GPT2, tmp_path / "pop", n=1, edits=2, method="rome", hparams=hparams, cache_dir=tmp_path / "s")
    assert seen == [hparams]
    assert dict(load_population(tmp_path / "pop").hparams) == hparams
    build_variants(GPT2, tmp_path / "plain", n=1, edits=2, method="rome", cache_dir=tmp_path / "s")
    assert json.loads((tmp_path / "plain" / "population.json").read_text())["hparams"] == {}
    meta_file = tmp_path / "pop" / "population.json"
    meta = json.loads(meta_file.read_text())
    del meta["hparams"]
    meta_file.write_text(json.dumps(meta))
    assert dict(load_population(tmp_path / "pop").hparams) == {}
    meta["hparams"] = ["kl_factor"]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(WorldFormatError, match="hparams"):
        load_population(tmp_path / "pop")
