"""Lean blocks holding a ``transformers`` model's parameters (issue 30, the value fit of ROME / MEMIT)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from tools.edit import family_of
from tools.lean import Packing, Segment, additive_mask, block_parts, block_sharing, blocks_supported
from tools.lm import HFLanguageModel

MODELS = ("gpt2-world", "llama-world")


@pytest.mark.parametrize("name", MODELS)
def test_a_shared_block_holds_the_models_parameters_and_computes_its_block(name: str) -> None:
    lm = HFLanguageModel.load(REPO / "eval" / "world" / "models" / name, device="cpu")
    model, family = lm.model, family_of(lm.model)
    assert blocks_supported(family.name, model.config) and not blocks_supported("gptj", model.config)
    last = family.n_layers - 1
    theirs = model.get_submodule(family.path(family.block, last))
    lean = block_sharing(family.name, model.config, last, theirs)
    assert lean is not None and len(block_parts(lean)) == 4
    mine = dict(lean.named_parameters())
    assert mine and all(p is dict(theirs.named_parameters())[n] for n, p in mine.items())  # the same objects

    # the block's output on a right-padded batch equals the lean block's on its real tokens, bit for bit
    batch = lm.tokenizer(["The capital of Norway is", "Q: Who"], return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert not bool(mask.all())  # there is padding to pack away
    seen: dict[str, torch.Tensor] = {}
    handle = theirs.register_forward_hook(lambda _m, args, out: seen.update(x=args[0], y=out))
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    finally:
        handle.remove()
    packing = Packing.of(mask, ids.shape[1])
    rope = None
    if family.name == "llama":
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        rope = model.base_model.rotary_emb(seen["x"], position_ids=positions)
    segment = Segment(len(packing.pack(mask)), packing, additive_mask(mask, ids.shape[1], seen["x"].dtype), None, rope)
    with torch.no_grad():
        out = lean(packing.pack(seen["x"]), [segment])
    assert torch.equal(out, packing.pack(seen["y"]))
    assert block_sharing(family.name, model.config, last, torch.nn.Linear(2, 2)) is None  # no counterpart
