"""Corpus use in MEMIT's value fit: the preservation term (texts drawn, what its loss measures) and phrasings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from tests.conftest import REPO
from tools.edit import EditRequest
from tools.edit._phrasings import corpus_phrasings
from tools.edit._preserve import Preservation, preservation_for
from tools.edit._values import ValueOptions, compute_values
from tools.lm._hf import HFLanguageModel

REQUEST = EditRequest("Digna Baltus was born in", "Digna Baltus", "Paris", "Rome")
TEXTS = ("Digna Baltus was born in Rome.", "Apple developed iBooks Author.", "Toyota is led by Akio Toyoda.", "  ")


@pytest.fixture(scope="module")
def lm() -> HFLanguageModel:
    return HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")


def _make(lm: HFLanguageModel, corpus: tuple[str, ...] | None = TEXTS, **kw: object) -> Preservation | None:
    args: dict[str, object] = dict(weight=2.0, per_step=8, pool=10, max_tokens=5, seed=0, device=torch.device("cpu"))
    args.update(kw)
    return preservation_for(lm.tokenizer, corpus, [REQUEST], **args)  # type: ignore[arg-type]


def test_pool_leaves_out_edited_subjects_and_blank_texts(lm: HFLanguageModel) -> None:
    side = lm.tokenizer.padding_side
    pres = _make(lm)
    assert pres is not None
    ids, mask = pres.input_ids, pres.attention_mask
    assert ids.shape[0] == 2 and ids.shape[1] <= 5  # two texts qualify, each cut to five tokens
    decoded = [lm.tokenizer.decode(row[m.bool()]) for row, m in zip(ids, mask, strict=True)]
    assert not any("Digna" in t for t in decoded)
    assert all(bool(m[0]) for m in mask)  # right padding: every row starts with a real token
    assert lm.tokenizer.padding_side == side  # the tokenizer's own setting is restored


def test_off_when_weight_zero_or_no_text(lm: HFLanguageModel) -> None:
    assert _make(lm, weight=0.0) is None
    assert _make(lm, per_step=0) is None
    assert _make(lm, corpus=None) is None
    assert _make(lm, corpus=("Digna Baltus lives in Rome.",)) is None  # every text names the edited subject


def test_loss_is_zero_unedited_and_positive_when_the_model_changes(lm: HFLanguageModel) -> None:
    pres = _make(lm, max_tokens=16)
    assert pres is not None

    @contextmanager
    def unchanged() -> Iterator[None]:
        yield

    @contextmanager
    def shifted() -> Iterator[None]:
        mlp = lm.model.get_submodule("transformer.h.0.mlp")
        push = 20.0 * torch.randn(mlp.c_proj.nf, generator=torch.Generator().manual_seed(0))  # not a constant: LN
        handle = mlp.register_forward_hook(lambda _m, _i, out: out + push)
        try:
            yield
        finally:
            handle.remove()

    assert float(pres.loss(lm.model, unchanged).detach()) == pytest.approx(0.0, abs=1e-5)
    assert float(pres.loss(lm.model, shifted).detach()) > 0.01


def test_compute_values_needs_directions_for_preservation(lm: HFLanguageModel) -> None:
    pres = _make(lm)
    options = ValueOptions(steps=1, lr=0.1, weight_decay=0.0, clamp_norm_factor=4.0, kl_factor=0.0)
    with pytest.raises(ValueError, match="directions"):
        compute_values(lm, "transformer.h.1", [REQUEST], ("{}",), options, preserve=pres)


def test_corpus_phrasings_state_the_old_fact_in_other_words() -> None:
    request = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigo", "Daniel Zhang", "company_ceo")
    corpus = (
        "The CEO of Alibaba is Daniel Zhang.",  # the fact, other words: kept, cut before the old object
        "Alibaba Group is led by chief executive Daniel Zhang.",  # another entity whose name starts alike
        "Alibaba's CEO is Daniel Zhang.",  # the request's own prompt
        "Daniel Zhang met Alibaba's founders.",  # the object before the subject
        "The CEO of Alibaba is Daniel Zhang.",  # a repeat
        "Alibaba is led by chief executive Daniel Zhang.",
        "Alibaba was founded in Hangzhou.",  # no old object
    )
    found = corpus_phrasings(corpus, [request], 5)
    assert [r.prompt for r in found] == ["The CEO of Alibaba is", "Alibaba is led by chief executive"]
    assert all(
        (r.subject, r.target_new, r.target_old) == ("Alibaba", "Takahiro Hachigo", "Daniel Zhang") for r in found
    )
    assert len(corpus_phrasings(corpus, [request], 1)) == 1
    assert corpus_phrasings(corpus, [request], 0) == [] and corpus_phrasings(None, [request], 2) == []
    no_old = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigo")
    assert corpus_phrasings(corpus, [no_old], 2) == []


def test_compute_values_checks_groups(lm: HFLanguageModel) -> None:
    options = ValueOptions(steps=1, lr=0.1, weight_decay=0.0, clamp_norm_factor=4.0, kl_factor=0.0)
    with pytest.raises(ValueError, match="directions"):
        compute_values(lm, "transformer.h.1", [REQUEST, REQUEST], ("{}",), options, groups=[0, 0])
    right = {"transformer.h.0.mlp.c_proj": (torch.zeros(1, 768), 1.0)}
    with pytest.raises(ValueError, match=r"0\.\.G-1"):
        compute_values(lm, "transformer.h.1", [REQUEST, REQUEST], ("{}",), options, right, groups=[0, 2])
    shared = compute_values(lm, "transformer.h.1", [REQUEST, REQUEST], ("{}",), options, right, groups=[0, 0])
    assert shared.init.shape == shared.target.shape == (1, 192) and len(shared.nll) == 2
