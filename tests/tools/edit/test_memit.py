"""MEMIT on both reference models: batch edits over several layers, pure compute, exact rollback, limits."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import known_requests
from tests.tools.edit._helpers import same as _same
from tests.tools.edit._helpers import state as _state
from tools.edit import EditRequest, LowRank, WeightDelta, family_of, journal_for
from tools.edit import _memit as memit_module
from tools.edit._memit import MEMITEditor, MEMITHyperParams, available_memory, estimate_memory
from tools.errors import EditBatchTooLargeError, InvalidEditError, LayerOutOfRangeError
from tools.lm._hf import HFLanguageModel

MODELS = ("gpt2-world", "llama-world")


@pytest.fixture(scope="module")
def known(bundled_world: Any, models: dict[str, HFLanguageModel]) -> dict[str, list[EditRequest]]:
    """Per model, five edits of distinct subjects whose old object the unedited model gives."""
    return {name: known_requests(bundled_world, lm, 80, 5, by_prompt=True) for name, lm in models.items()}


def _editor(corpus: tuple[str, ...], cache_dir: Path, **hp: Any) -> MEMITEditor:
    return MEMITEditor(corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **hp)


def _says(lm: HFLanguageModel, reqs: list[EditRequest], new: bool = True) -> list[bool]:
    gens = lm.generate([r.prompt for r in reqs], max_new_tokens=16)
    return [g.text.startswith(r.target_new if new else r.target_old or "") for g, r in zip(gens, reqs, strict=True)]


@pytest.mark.parametrize("name", MODELS)
def test_defaults_per_family(name: str, models: dict[str, HFLanguageModel]) -> None:
    family = family_of(models[name].model)
    hp = MEMITHyperParams.for_family(family)
    assert len(hp.layers) >= 2 and list(hp.layers) == sorted(hp.layers)
    assert all(0 <= layer < family.n_layers - 1 for layer in hp.layers)  # a later block reads the edit
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.mom2_update_weight = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("name", MODELS)
def test_batch_of_five(name: str, models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path) -> None:
    lm, reqs = models[name], known[name]
    assert len(reqs) == 5
    editor = _editor(corpus, cache_dir)
    before, training = _state(lm), lm.model.training
    delta = editor.compute(lm, reqs)
    assert _same(before, _state(lm)) and lm.model.training == training
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())
    assert isinstance(delta, WeightDelta) and delta.method == "memit"
    assert delta.info["corpus_phrasings"] > 0  # the corpus states these facts in other words too
    family = family_of(lm.model)
    layers = editor.hparams_for(lm).layers
    assert set(delta.updates) == {family.mlp_out.format(layer) + ".weight" for layer in layers}
    params = dict(lm.model.named_parameters())
    for param_name, update in delta.updates.items():
        assert isinstance(update, LowRank)
        # a request and its phrasings share one value (share_phrasing_values): the rank is the batch's
        assert update.left.shape[1] == update.right.shape[0] == len(reqs)
        assert update.shape == tuple(params[param_name].shape)

    handle = editor.apply(lm, delta)
    assert sum(_says(lm, reqs)) >= 4, f"{name}: the batch did not take effect"
    handle.rollback()
    assert _same(before, _state(lm)) and all(_says(lm, reqs, new=False))
    assert len(journal_for(lm.model)) == 0


def test_paper_procedure_is_pure_too(
    models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path
) -> None:
    lm, reqs = models["gpt2-world"], known["gpt2-world"][:3]
    before = _state(lm)
    delta = _editor(corpus, cache_dir, exact_objective=False, mom2_update_weight=300.0).compute(lm, reqs)
    assert _same(before, _state(lm))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())
    assert isinstance(delta, WeightDelta) and len(delta.updates) == 2
    prompts, targets = [r.prompt for r in reqs], [" " + r.target_new for r in reqs]
    old = sum(s.logprob for s in lm.score(prompts, targets))
    with torch.no_grad():
        handle = journal_for(lm.model).apply(delta)
    try:
        assert sum(s.logprob for s in lm.score(prompts, targets)) > old + 5.0
    finally:
        handle.rollback()
    assert _same(before, _state(lm))


def test_bad_layers_and_missing_corpus(
    models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path, tmp_path: Path
) -> None:
    lm, reqs = models["llama-world"], known["llama-world"][:1]
    with pytest.raises(LayerOutOfRangeError):
        _editor(corpus, cache_dir, layers=(0, 9)).compute(lm, reqs)
    with pytest.raises(InvalidEditError, match="corpus"):
        MEMITEditor(cache_dir=tmp_path).compute(lm, reqs)


def test_memory_guard(
    models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm = models["gpt2-world"]
    family = family_of(lm.model)
    hp = MEMITHyperParams.for_family(family)
    assert estimate_memory(10, 30, 4096, family, hp) < estimate_memory(5000, 30, 4096, family, hp)
    assert available_memory(torch.device("cpu")) > 0
    before = _state(lm)
    monkeypatch.setattr(memit_module, "available_memory", lambda _device: 1 << 20)  # 1 MiB free
    with pytest.raises(EditBatchTooLargeError, match="GiB"):
        _editor(corpus, cache_dir).compute(lm, known["gpt2-world"][:2])
    assert _same(before, _state(lm))


@pytest.mark.slow
def test_preservation_keeps_unrelated_text(
    bundled_world: Any, models: dict[str, HFLanguageModel], known: Any, corpus: Any, cache_dir: Path
) -> None:
    """The KL term on corpus sentences lowers the batch's change on sentences it never saw; the edits hold.

    The baseline keeps the term with a negligible weight, so both fits run the same way (no request frozen).
    """
    lm, reqs = models["gpt2-world"], known["gpt2-world"]
    held_out = [d.text for d in bundled_world.documents[400:700] if not any(r.subject in d.text for r in reqs)]
    tok = lm.tokenizer
    side, tok.padding_side = tok.padding_side, "right"
    try:
        enc = tok(held_out, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = side
    real = enc["attention_mask"].bool()

    def logp() -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(lm.model(**enc).logits.float(), dim=-1)[real]

    base = logp()
    kls, said = {}, {}
    for weight in (1e-6, 3.0):
        delta = _editor(corpus, cache_dir, preserve_weight=weight).compute(lm, reqs)
        handle = journal_for(lm.model).apply(delta)
        try:
            kls[weight] = float(torch.nn.functional.kl_div(logp(), base, log_target=True, reduction="batchmean"))
            said[weight] = sum(_says(lm, reqs))
        finally:
            handle.rollback()
    assert said[3.0] >= 4, said
    assert kls[3.0] < 0.8 * kls[1e-6], kls


@pytest.mark.parametrize("name", MODELS)
def test_blocks_below_the_lowest_layer_run_once_bit_identical(
    name: str,
    models: dict[str, HFLanguageModel],
    known: Any,
    corpus: Any,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The value fit through all layers' updates runs the blocks up to the lowest edited MLP once per chunk and
    computes that MLP's response once (tools.edit._upper): the delta is bit-identical to full forwards'."""
    from tools.edit import _values

    lm, reqs = models[name], known[name][:2]
    blocks = [id(m) for m in lm.model.modules()]
    hp = {"v_num_grad_steps": 4, "v_early_stop_loss": 0.0}
    cached: list[bool] = []
    real = _values.cache_below

    def counted(*args: Any) -> Any:
        below = real(*args)
        cached.append(below is not None)
        return below

    monkeypatch.setattr(_values, "cache_below", counted)
    fast = _editor(corpus, cache_dir, **hp).compute(lm, reqs)
    assert cached == [True]  # the shortcut was taken (one chunk)
    full = _editor(corpus, cache_dir, v_skip_below=False, **hp).compute(lm, reqs)
    assert [id(m) for m in lm.model.modules()] == blocks  # the model's own blocks are back
    assert isinstance(fast, WeightDelta) and isinstance(full, WeightDelta)
    assert len(fast.updates) >= 2 and set(fast.updates) == set(full.updates)
    for key, a in fast.updates.items():
        b = full.updates[key]
        assert isinstance(a, LowRank) and isinstance(b, LowRank)
        assert torch.equal(a.left, b.left) and torch.equal(a.right, b.right)
    assert fast.info["nll_mean"] == full.info["nll_mean"]


@pytest.mark.parametrize("name", MODELS)
def test_keys_read_without_the_layers_above(name: str, models: dict[str, HFLanguageModel], known: Any) -> None:
    """subject_keys stops the forward at the traced module: the keys equal those of a full forward."""
    from tools.edit._hooks import Trace
    from tools.edit._keys import _encode, _subject_last_char, subject_keys

    lm, reqs = models[name], known[name][:3]
    path = family_of(lm.model).path(family_of(lm.model).mlp_out, 1)
    got = subject_keys(lm, path, reqs, ("{}", "Q: {}"))  # (3, 2, in)
    texts, chars = zip(
        *(_subject_last_char(t, r.prompt, r.subject) for r in reqs for t in ("{}", "Q: {}")), strict=True
    )
    batch = _encode(lm, list(texts), list(chars), [None] * len(texts))
    with torch.no_grad(), Trace(lm.model, path, retain_input=True) as trace:
        logits = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert logits is not None and trace.input is not None
    rows = torch.arange(len(texts))
    assert torch.equal(got.reshape(len(texts), -1), trace.input[rows, batch.lookup].float())
