"""ROME's preserved outputs and spread layers (issue 22): off stays bit-identical, on does what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from eval.concepts import uses_preserved_prompts
from tests.tools.edit._helpers import load_models
from tools.edit import EditRequest, get_editor
from tools.edit._delta import LowRank, WeightDelta
from tools.errors import InvalidEditError

REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang", "company_ceo")
KEPT = (
    ("Q: What is the definition of a glacier?\nA: a slow river of ice.", "glacier"),
    ("Q: Who is the CEO of Sony?\nA: Kenichiro Yoshida.", "Sony"),
)
FAST = {"layers": (0,), "v_num_grad_steps": 12, "n_context_templates": 1, "preserve_prompts": KEPT}


@pytest.fixture(scope="module")
def lm() -> Any:
    return load_models()["gpt2-world"]


def _delta(lm: Any, corpus: Any, cache_dir: Path, **hp: Any) -> WeightDelta:
    settings = FAST | hp
    editor = get_editor("rome", corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **settings)
    delta = editor.compute(lm, [REQ])
    assert isinstance(delta, WeightDelta)
    return delta


def _same(a: WeightDelta, b: WeightDelta) -> bool:
    def parts(d: WeightDelta) -> list[torch.Tensor]:
        out = []
        for update in d.updates.values():
            assert isinstance(update, LowRank)
            out += [update.left, update.right]
        return out

    return a.updates.keys() == b.updates.keys() and all(
        torch.equal(x, y) for x, y in zip(parts(a), parts(b), strict=True)
    )


def _log_probs(lm: Any, text: str) -> torch.Tensor:
    ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return torch.log_softmax(lm.model(input_ids=ids).logits.float(), dim=-1)[0]  # (T, V)


def _kl_after(lm: Any, corpus: Any, cache_dir: Path, text: str, **hp: Any) -> float:
    """Mean KL(unedited || edited) per position of ``text`` once the edit is applied (rolled back after)."""
    before = _log_probs(lm, text)
    editor = get_editor("rome", corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **(FAST | hp))
    handle = editor.apply(lm, editor.compute(lm, [REQ]))
    try:
        after = _log_probs(lm, text)
    finally:
        handle.rollback()
    return float(torch.nn.functional.kl_div(after, before, log_target=True, reduction="none").sum(-1).mean())


def test_off_is_bit_identical(lm: Any, corpus: Any, cache_dir: Path) -> None:
    plain = _delta(lm, corpus, cache_dir)
    assert _same(_delta(lm, corpus, cache_dir, preserve_output_weight=0.0, preserve_output_texts=1), plain)
    assert _same(_delta(lm, corpus, cache_dir, extra_layers=()), plain)
    assert list(plain.updates) == ["transformer.h.0.mlp.c_proj.weight"]


def test_output_term_keeps_the_preserved_prompts_outputs(lm: Any, corpus: Any, cache_dir: Path) -> None:
    text = KEPT[1][0]
    plain = _kl_after(lm, corpus, cache_dir, text)
    held = _kl_after(lm, corpus, cache_dir, text, preserve_output_weight=30.0)
    assert plain > 0.0
    assert held < 0.7 * plain


def test_output_term_changes_the_update(lm: Any, corpus: Any, cache_dir: Path) -> None:
    plain = _delta(lm, corpus, cache_dir)
    held = _delta(lm, corpus, cache_dir, preserve_output_weight=1.0)
    assert not _same(plain, held)


def test_extra_layers_spread_one_value_over_both_blocks(lm: Any, corpus: Any, cache_dir: Path) -> None:
    delta = _delta(lm, corpus, cache_dir, extra_layers=(1,))
    paths = ["transformer.h.0.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.weight"]
    assert list(delta.updates) == paths and delta.info["layers"] == [0, 1]
    first, second = (delta.updates[p] for p in paths)
    assert isinstance(first, LowRank) and isinstance(second, LowRank)
    # GPT-2's Conv1D: ``right`` is the output side, the value's even share, the same at both blocks
    assert torch.equal(first.right, second.right)
    assert not torch.equal(first.left, second.left)  # each block its own key direction
    before = lm.generate([REQ.prompt], max_new_tokens=8)[0].text
    editor = get_editor("rome", corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **FAST)
    handle = editor.apply(lm, delta)
    try:
        after = lm.generate([REQ.prompt], max_new_tokens=8)[0].text
    finally:
        handle.rollback()
    assert after.strip().startswith("Takahiro") and not before.strip().startswith("Takahiro")


@pytest.mark.parametrize(
    "bad",
    [
        {"preserve_output_weight": -1.0},
        {"preserve_output_texts": 0},
        {"preserve_output_weight": 1.0, "exact_objective": False},
        {"extra_layers": (1,), "exact_objective": False},
        {"extra_layers": (0,)},
        {"extra_layers": (1, 1)},
    ],
)
def test_bad_settings_are_refused(lm: Any, corpus: Any, cache_dir: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidEditError):
        _delta(lm, corpus, cache_dir, **bad)


def test_concept_bench_gives_the_prompts_for_the_output_term() -> None:
    assert uses_preserved_prompts("rome", {"preserve_output_weight": 1.0})
    assert not uses_preserved_prompts("rome", {"preserve_output_weight": 0.0})
    assert not uses_preserved_prompts("rome", {"preserve_output_weight": 1.0, "preserve_prompts": ()})
