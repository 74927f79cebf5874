"""Helpers shared by the editing tests: weight snapshots, bit-for-bit comparison, probe logits."""

from __future__ import annotations

from typing import Any

import torch

from tests.conftest import REPO
from tools.edit import EditRequest
from tools.lm._hf import HFLanguageModel

PROBE = torch.tensor([[5, 60, 700, 8, 90, 1000, 11]])  # token ids whose logits show any change of the model


def state(lm: HFLanguageModel) -> dict[str, torch.Tensor]:
    """A copy of every weight."""
    return {k: v.detach().clone() for k, v in lm.model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """The two snapshots are bit for bit equal."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def logits(lm: HFLanguageModel) -> torch.Tensor:
    """The model's logits on :data:`PROBE` (adapters included)."""
    with torch.no_grad():
        return lm.model(PROBE).logits.clone()


MODELS = ("gpt2-world", "llama-world")


def load_models() -> dict[str, HFLanguageModel]:
    """Both bundled reference models, on the CPU."""
    return {name: HFLanguageModel.load(REPO / "eval" / "world" / "models" / name, device="cpu") for name in MODELS}


def known_requests(world: Any, lm: HFLanguageModel, pool: int, n: int, *, by_prompt: bool = False) -> list[EditRequest]:
    """Up to ``n`` of the world's first ``pool`` edits whose old object ``lm`` gives, on distinct subjects.

    Subjects are distinct when neither contains the other (``by_prompt``: when the subject does not occur in an
    already picked edit's prompt).
    """
    edits = world.edits[:pool]
    gens = lm.generate([e.prompt for e in edits], max_new_tokens=8)
    picked: list[EditRequest] = []
    for e, g in zip(edits, gens, strict=True):
        if by_prompt:
            clash = any(e.subject in r.prompt for r in picked)
        else:
            clash = any(e.subject in r.subject or r.subject in e.subject for r in picked)
        if g.text.startswith(e.old_object) and not clash:
            picked.append(EditRequest(e.prompt, e.subject, e.new_object, e.old_object, e.relation))
    return picked[:n]


ROME_BLOCK0 = "transformer.h.0.mlp.c_proj"  # GPT-2's first MLP output: where the fast ROME fits below edit
ROME_FAST = {"layers": (0,), "v_num_grad_steps": 3, "n_context_templates": 1}


def rome_block0_update(lm: HFLanguageModel, corpus: Any, cache_dir: Any, request: EditRequest, **hp: Any) -> Any:
    """The low-rank update a fast ROME fit (block 0, 3 value steps, one context template) computes for ``request``."""
    from tools.edit import get_editor
    from tools.edit._delta import LowRank, WeightDelta

    editor = get_editor("rome", corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **ROME_FAST, **hp)
    delta = editor.compute(lm, [request])
    assert isinstance(delta, WeightDelta)
    update = delta.updates[f"{ROME_BLOCK0}.weight"]
    assert isinstance(update, LowRank)
    return update
