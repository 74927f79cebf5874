"""Key statistics for ROME/MEMIT: correct second moment, disk and memory caches, a fingerprint edits keep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tools.edit import WeightDelta, journal_for
from tools.edit._family import family_of
from tools.edit._hooks import Trace
from tools.edit._stats import clear_memo, corpus_key, model_fingerprint, second_moment
from tools.errors import InvalidEditError, LayerOutOfRangeError
from tools.lm._hf import HFLanguageModel


@pytest.fixture(scope="module")
def lm() -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")


@pytest.fixture(scope="module")
def corpus(bundled_world: Any) -> tuple[str, ...]:
    return tuple(d.text for d in bundled_world.documents[:120])


def _edit_layer(lm: HFLanguageModel, layer: int) -> WeightDelta:
    """A dense update of one block's MLP output weight."""
    name = f"transformer.h.{layer}.mlp.c_proj.weight"
    param = dict(lm.model.named_parameters())[name]
    return WeightDelta("test", (), {name: torch.full_like(param, 0.01)})


def test_second_moment_matches_a_direct_computation(lm: HFLanguageModel, corpus: tuple[str, ...]) -> None:
    clear_memo()
    stats = second_moment(lm, 1, corpus=corpus[:10], batch_size=4)
    keys = []
    for text in corpus[:10]:
        ids = torch.tensor([lm.tokenizer(text, add_special_tokens=False)["input_ids"]])
        with Trace(lm.model, "transformer.h.1.mlp.c_proj", retain_input=True) as trace, torch.no_grad():
            lm.model(ids)
        assert trace.input is not None
        keys.append(trace.input[0].double())
    k = torch.cat(keys)  # (N, 768): every token, no padding
    assert stats.n_tokens == k.shape[0]
    assert stats.matrix.shape == (768, 768)
    assert torch.allclose(stats.matrix.double(), k.T @ k / k.shape[0], atol=1e-5, rtol=1e-4)
    assert stats.source == "computed" and not stats.from_cache


def test_disk_cache_then_memory(lm: HFLanguageModel, corpus: tuple[str, ...], tmp_path: Path) -> None:
    clear_memo()
    first = second_moment(lm, 0, corpus=corpus, corpus_name="docs-120", cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].endswith(".safetensors")  # no temporary file left behind
    clear_memo()
    from_disk = second_moment(lm, 0, corpus=corpus, corpus_name="docs-120", cache_dir=tmp_path)
    assert from_disk.source == "disk" and from_disk.from_cache
    assert torch.equal(first.matrix, from_disk.matrix) and first.n_tokens == from_disk.n_tokens
    from_memory = second_moment(lm, 0, corpus=None, corpus_name="docs-120", cache_dir=tmp_path)
    assert from_memory.source == "memory" and torch.equal(first.matrix, from_memory.matrix)
    clear_memo()
    # a cached corpus is found by name alone; another text limit is another entry
    assert second_moment(lm, 0, corpus=None, corpus_name="docs-120", cache_dir=tmp_path).source == "disk"
    other = second_moment(lm, 0, corpus=corpus, corpus_name="docs-120", cache_dir=tmp_path, max_texts=50)
    assert other.source == "computed" and other.n_tokens < first.n_tokens


def test_missing_corpus_is_a_clear_error(lm: HFLanguageModel, tmp_path: Path) -> None:
    clear_memo()
    with pytest.raises(InvalidEditError, match="corpus"):
        second_moment(lm, 0, corpus=None, cache_dir=tmp_path)
    with pytest.raises(InvalidEditError, match="corpus"):
        second_moment(lm, 0, corpus=None, corpus_name="never-computed", cache_dir=tmp_path)
    with pytest.raises(InvalidEditError):
        second_moment(lm, 0, corpus=[])
    with pytest.raises(LayerOutOfRangeError):
        second_moment(lm, 9, corpus=["a b c"])


def test_corpus_key_names_or_hashes() -> None:
    assert corpus_key(["a", "b"], "world docs") == "world-docs"
    assert corpus_key(["a", "b"], "") == corpus_key(["a", "b"], "")
    assert corpus_key(["a", "b"], "") != corpus_key(["a", "c"], "")


def test_fingerprint_survives_journal_edits(lm: HFLanguageModel, corpus: tuple[str, ...]) -> None:
    before = {layer: model_fingerprint(lm.model, layer) for layer in range(4)}
    clear_memo()
    original = second_moment(lm, 1, corpus=corpus[:20])
    handle = journal_for(lm.model).apply(_edit_layer(lm, 0))
    try:
        assert {layer: model_fingerprint(lm.model, layer) for layer in range(4)} == before
        clear_memo()
        # statistics of an edited model are those of the original weights (computed on a copy)
        again = second_moment(lm, 1, corpus=corpus[:20])
        assert again.source == "computed" and torch.equal(again.matrix, original.matrix)
    finally:
        handle.rollback()
    assert {layer: model_fingerprint(lm.model, layer) for layer in range(4)} == before


def test_fingerprint_sees_weights_up_to_the_layer(lm: HFLanguageModel) -> None:
    before = [model_fingerprint(lm.model, layer) for layer in range(4)]
    param = lm.model.get_submodule("transformer.h.2.mlp.c_proj").weight
    saved = param.detach().clone()
    try:
        with torch.no_grad():
            param.add_(0.01)  # outside the journal: a different model
        after = [model_fingerprint(lm.model, layer) for layer in range(4)]
    finally:
        with torch.no_grad():
            param.copy_(saved)
    assert after[:2] == before[:2]  # layers 0 and 1 do not see block 2
    assert after[2] != before[2] and after[3] != before[3]
    assert family_of(lm.model).n_layers == 4
