"""ROME's preserved prompts (issue 22): their keys join the key covariance, so the update responds less there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import load_models
from tools.edit import EditRequest, get_editor
from tools.edit._alphaedit import preserved_prompt_keys
from tools.edit._delta import LowRank, WeightDelta
from tools.errors import InvalidEditError

REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang", "company_ceo")
PATH = "transformer.h.0.mlp.c_proj"
FAST = {"layers": (0,), "v_num_grad_steps": 3, "n_context_templates": 1}


@pytest.fixture(scope="module")
def lm() -> Any:
    return load_models()["gpt2-world"]


def _update(lm: Any, corpus: Any, cache_dir: Path, **hp: Any) -> LowRank:
    delta = get_editor("rome", corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **FAST, **hp).compute(
        lm, [REQ]
    )
    assert isinstance(delta, WeightDelta)
    update = delta.updates[f"{PATH}.weight"]
    assert isinstance(update, LowRank)
    return update


def _response(update: LowRank, keys: torch.Tensor) -> float:
    """Largest ``|u · k|`` over the keys ``(in, T)`` (GPT-2's Conv1D: the input side is ``left``, ``(in, 1)``);
    the update gives 1 at the edited prompt's subject key."""
    return float((update.left.T.float() @ keys).abs().max())


def test_rome_responds_less_at_the_preserved_prompts_and_not_less_at_the_edited_subjects(
    lm: Any, corpus: Any, cache_dir: Path
) -> None:
    kept = ("Q: What is the definition of a glacier?\nA: a slow river of ice.", "glacier")
    own = ("Alibaba is a company.", "Alibaba")  # the edited subject: not preserved
    plain = _update(lm, corpus, cache_dir)
    off = _update(lm, corpus, cache_dir, preserve_prompts=(kept, own))  # weight 0: off
    on = _update(lm, corpus, cache_dir, preserve_prompts=(kept, own), preserve_prompt_weight=10.0)
    assert torch.equal(off.left, plain.left) and torch.equal(off.right, plain.right)
    spared = preserved_prompt_keys(lm, PATH, [kept[0]]).float()
    own_keys = preserved_prompt_keys(lm, PATH, [own[0]]).float()
    assert _response(on, spared) < 0.5 * _response(plain, spared)  # the preserved prompt's keys: shrunk
    assert _response(on, own_keys) > 0.5 * _response(plain, own_keys)  # the edited subject's prompt: not
    subject_key = preserved_prompt_keys(lm, PATH, ["Alibaba"]).float()[:, -1:]
    assert _response(on, subject_key) == pytest.approx(1.0, rel=0.05)  # still maps the edited key to its value


@pytest.mark.parametrize(
    "bad", [{"preserve_prompt_weight": -1.0}, {"preserve_prompts": (("only a prompt",),)}, {"preserve_prompts": ("x",)}]
)
def test_rome_rejects_bad_preserve_settings(lm: Any, corpus: Any, cache_dir: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidEditError):
        get_editor("rome", corpus=corpus, cache_dir=cache_dir, **FAST, **bad).compute(lm, [REQ])


def test_rome_focus_weighs_the_preserved_keys_nearest_the_edited_key(lm: Any, corpus: Any, cache_dir: Path) -> None:
    near = ("Alibaba's founder is Jack Ma.", "Jack Ma")  # shares the edited subject's token: keys near k*
    far = ("Q: What is the definition of a glacier?\nA: a slow river of ice.", "glacier")
    base = {"preserve_prompts": (near, far), "preserve_prompt_weight": 0.3}
    uniform = _update(lm, corpus, cache_dir, **base)
    zero = _update(lm, corpus, cache_dir, **base, preserve_prompt_focus=0.0)
    focused = _update(lm, corpus, cache_dir, **base, preserve_prompt_focus=8.0)
    assert torch.equal(zero.left, uniform.left) and torch.equal(zero.right, uniform.right)  # 0: off, bit-identical
    near_keys = preserved_prompt_keys(lm, PATH, [near[0]]).float()
    far_keys = preserved_prompt_keys(lm, PATH, [far[0]]).float()
    assert _response(focused, near_keys) < 0.8 * _response(uniform, near_keys)  # the near keys weigh more
    assert _response(focused, far_keys) > _response(uniform, far_keys)  # the far ones less
    subject_key = preserved_prompt_keys(lm, PATH, ["Alibaba"]).float()[:, -1:]
    assert _response(focused, subject_key) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(InvalidEditError):
        get_editor("rome", corpus=corpus, cache_dir=cache_dir, **FAST, preserve_prompt_focus=-1.0).compute(lm, [REQ])
