"""Which model runs where (issue 30): the lean modules answer until something needs ``transformers``' model.

An editor, a journal or circuits reach the weights through ``.model`` / ``.tokenizer``: that loads the
``transformers`` model once, and every later call answers from it (an edit is what later answers see).
Directories the lean modules cannot run (another architecture, saved edit adapters) and ``[runtime] lean =
"off"`` load ``transformers``' model from the start.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from agent.wiring._models import load_local_model
from tests.conftest import REPO
from tests.tools import tiny_archs
from tools.lean import lean_causal_reason
from tools.lm import HFLanguageModel, LeanLanguageModel

GPT2 = REPO / "eval" / "world" / "models" / "gpt2-world"
PROMPTS = ["Q: Who is the CEO of Nokia?\nA:", "Q: Where is Paris?\nA:"]


def test_the_bundled_models_run_lean_and_others_fall_back(tiny_tokenizer: Any, tmp_path: Path) -> None:
    assert lean_causal_reason(GPT2) is None and lean_causal_reason(GPT2.parent / "llama-world") is None
    assert type(load_local_model(GPT2, "cpu")) is LeanLanguageModel
    assert type(load_local_model(GPT2, "cpu", lean=False)) is HFLanguageModel  # [runtime] lean = "off"
    qwen = tiny_archs.save(tiny_archs.build("qwen2", tiny_tokenizer), tmp_path / "qwen2")
    assert "no lean module" in str(lean_causal_reason(qwen))
    assert type(load_local_model(qwen, "cpu")) is HFLanguageModel
    edited = tmp_path / "edited"
    shutil.copytree(GPT2, edited)
    (edited / "adapters.json").write_text("{}", encoding="utf-8")  # GRACE / WISE modules saved with the weights
    assert "adapters" in str(lean_causal_reason(edited))
    assert type(load_local_model(edited, "cpu")) is HFLanguageModel


def test_asking_for_the_weights_loads_transformers_model_once_and_answers_follow_it() -> None:
    from transformers import PreTrainedModel

    lm = LeanLanguageModel.load(GPT2, device="cpu")
    before = lm.score(PROMPTS, [" Pekka", " France"])
    model = lm.model
    assert isinstance(model, PreTrainedModel) and lm.runtime == "transformers"
    assert lm.model is model and lm.tokenizer is lm._tokenizer  # loaded once
    assert [s.logprob for s in lm.score(PROMPTS, [" Pekka", " France"])] == pytest.approx(
        [s.logprob for s in before], abs=1e-4
    )
    with torch.no_grad():  # a weight change made through .model (as an editor's) is what answers see
        model.transformer.ln_f.bias.add_(0.5)
    after = lm.score(PROMPTS, [" Pekka", " France"])
    assert all(abs(a.logprob - b.logprob) > 1e-3 for a, b in zip(after, before, strict=True))


def test_a_rome_edit_through_the_lean_model_lands_in_the_answers_and_rolls_back(
    bundled_world: Any, tmp_path: Path
) -> None:
    from tools.edit import EditRequest, get_editor

    lm = LeanLanguageModel.load(GPT2, device="cpu")
    request = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", target_old="Daniel Zhang")
    before = lm.generate([request.prompt], max_new_tokens=6)[0].text
    corpus = tuple(d.text for d in bundled_world.documents[:200])  # ROME's key statistics
    editor = get_editor("rome", corpus=corpus, cache_dir=tmp_path)
    handle = editor.apply(lm, editor.compute(lm, [request]))
    assert lm.runtime == "transformers"
    assert lm.generate([request.prompt], max_new_tokens=6)[0].text.startswith("Takahiro")
    handle.rollback()
    assert lm.generate([request.prompt], max_new_tokens=6)[0].text == before


def test_asking_whether_a_model_is_local_loads_nothing() -> None:
    from tools.lm import LocalLanguageModel, is_local_model

    lm = LeanLanguageModel.load(GPT2, device="cpu")
    local = is_local_model(lm)  # the wiring's check before a tell pipeline
    assert local and lm.runtime == "lean"
    assert not is_local_model(object())
    assert isinstance(lm, LocalLanguageModel)  # the protocol itself holds (this reads .model: the swap)
