"""ROME's preserved prompts (issue 22): their keys join the key covariance, so the update responds less there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import ROME_BLOCK0, ROME_FAST, load_models, rome_block0_update
from tools.edit import EditRequest, get_editor
from tools.edit._alphaedit import preserved_prompt_keys
from tools.edit._delta import LowRank
from tools.errors import InvalidEditError

REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang", "company_ceo")


@pytest.fixture(scope="module")
def lm() -> Any:
    return load_models()["gpt2-world"]


def _response(update: LowRank, keys: torch.Tensor) -> float:
    """Largest ``|u · k|`` over the keys ``(in, T)`` (GPT-2's Conv1D: the input side is ``left``, ``(in, 1)``);
    the update gives 1 at the edited prompt's subject key."""
    return float((update.left.T.float() @ keys).abs().max())


def test_rome_responds_less_at_the_preserved_prompts_and_not_less_at_the_edited_subjects(
    lm: Any, corpus: Any, cache_dir: Path
) -> None:
    kept = ("Q: What is the definition of a glacier?\nA: a slow river of ice.", "glacier")
    own = ("Alibaba is a company.", "Alibaba")  # the edited subject: not preserved
    plain = rome_block0_update(lm, corpus, cache_dir, REQ)
    off = rome_block0_update(lm, corpus, cache_dir, REQ, preserve_prompts=(kept, own))  # weight 0: off
    on = rome_block0_update(lm, corpus, cache_dir, REQ, preserve_prompts=(kept, own), preserve_prompt_weight=10.0)
    assert torch.equal(off.left, plain.left) and torch.equal(off.right, plain.right)
    spared = preserved_prompt_keys(lm, ROME_BLOCK0, [kept[0]]).float()
    own_keys = preserved_prompt_keys(lm, ROME_BLOCK0, [own[0]]).float()
    assert _response(on, spared) < 0.5 * _response(plain, spared)  # the preserved prompt's keys: shrunk
    assert _response(on, own_keys) > 0.5 * _response(plain, own_keys)  # the edited subject's prompt: not
    subject_key = preserved_prompt_keys(lm, ROME_BLOCK0, ["Alibaba"]).float()[:, -1:]
    assert _response(on, subject_key) == pytest.approx(1.0, rel=0.05)  # still maps the edited key to its value


@pytest.mark.parametrize(
    "bad", [{"preserve_prompt_weight": -1.0}, {"preserve_prompts": (("only a prompt",),)}, {"preserve_prompts": ("x",)}]
)
def test_rome_rejects_bad_preserve_settings(lm: Any, corpus: Any, cache_dir: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidEditError):
        get_editor("rome", corpus=corpus, cache_dir=cache_dir, **ROME_FAST, **bad).compute(lm, [REQ])


def test_rome_focus_weighs_the_preserved_keys_the_plain_update_answers_most(
    lm: Any, corpus: Any, cache_dir: Path
) -> None:
    near = ("Q: What is the definition of a glacier?\nA: a slow river of ice.", "glacier")
    other = ("Tencent's CEO is Pony Ma.", "Tencent")
    same = ("Alibaba's founder is Jack Ma.", "Jack Ma")  # holds the edited key itself: weighs 0 under focus
    base = {"preserve_prompts": (near, other, same), "preserve_prompt_weight": 0.3}
    plain = rome_block0_update(lm, corpus, cache_dir, REQ)
    uniform = rome_block0_update(lm, corpus, cache_dir, REQ, **base)
    zero = rome_block0_update(lm, corpus, cache_dir, REQ, **base, preserve_prompt_focus=0.0)
    focused = rome_block0_update(lm, corpus, cache_dir, REQ, **base, preserve_prompt_focus=4.0)
    assert torch.equal(zero.left, uniform.left) and torch.equal(zero.right, uniform.right)  # 0: off, bit-identical
    keys = preserved_prompt_keys(lm, ROME_BLOCK0, [near[0], other[0]]).float()
    top = int((plain.left.T.float() @ keys).abs().argmax())  # the key the plain update answers most
    assert _response(focused, keys[:, top : top + 1]) < 0.5 * _response(uniform, keys[:, top : top + 1])
    assert _response(focused, keys) < 0.5  # the edited key inside "same" is not kept: no blow-up elsewhere
    none = rome_block0_update(
        lm, corpus, cache_dir, REQ, **base, preserve_prompt_focus=4.0, preserve_prompt_focus_share=0.0
    )
    assert torch.equal(none.left, uniform.left) and torch.equal(none.right, uniform.right)  # share 0: uniform
    mixed = rome_block0_update(
        lm, corpus, cache_dir, REQ, **base, preserve_prompt_focus=4.0, preserve_prompt_focus_share=0.5
    )
    at_top = [_response(u, keys[:, top : top + 1]) for u in (focused, mixed, uniform)]
    assert at_top[0] < at_top[1] < at_top[2]  # the mix lies between
    subject_key = preserved_prompt_keys(lm, ROME_BLOCK0, ["Alibaba"]).float()[:, -1:]
    assert _response(focused, subject_key) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(InvalidEditError):
        get_editor("rome", corpus=corpus, cache_dir=cache_dir, **ROME_FAST, preserve_prompt_focus=-1.0).compute(
            lm, [REQ]
        )
    with pytest.raises(InvalidEditError):
        get_editor("rome", corpus=corpus, cache_dir=cache_dir, **ROME_FAST, preserve_prompt_focus_share=2.0).compute(
            lm, [REQ]
        )
