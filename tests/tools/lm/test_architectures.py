"""``HFLanguageModel.load`` on a tiny random model of every supported ``model_type`` (saved, then loaded back).

The answers are noise; the paths must work: loading from a standard directory, the prompt format, batched
generation with left padding and batched scoring with right padding giving what one prompt at a time gives,
and the next-token distribution agreeing with the first generated token's probability.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.tools import tiny_archs
from tools.lm import HFLanguageModel

PROMPTS = ["Q: Who is the CEO of Nokia?\nA:", "Paris", "Context: Paris is in France.\nQ: Where is Paris?\nA:"]
CONTINUATIONS = [" Pekka Lundmark", " is in France.", " France"]


@pytest.fixture(scope="module", params=tiny_archs.MODEL_TYPE_NAMES)
def loaded(request: pytest.FixtureRequest, tiny_tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tiny model of the type, saved as an HF directory and loaded with :meth:`HFLanguageModel.load`."""
    model_type = str(request.param)
    built = tiny_archs.build(model_type, tiny_tokenizer)
    path = tiny_archs.save(built, tmp_path_factory.mktemp(f"tiny-{model_type}"))
    return built, HFLanguageModel.load(path, device="cpu")


def test_load_keeps_the_architecture_and_the_weights(loaded: Any) -> None:
    built, lm = loaded
    assert type(lm.model) is type(built.model) and lm.device.type == "cpu" and lm.model.dtype == torch.float32
    probe = torch.tensor([[5, 60, 200, 8]])
    with torch.no_grad():
        assert torch.equal(lm.model(probe).logits, built.model(probe).logits)


def test_batched_generation_and_scoring_match_single_prompts(loaded: Any) -> None:
    _, lm = loaded
    question = lm.prompt_format.question("Who is the CEO of Nokia?")
    prompts = [*PROMPTS, question]
    conts = [*CONTINUATIONS, " Pekka"]
    batched = lm.score(prompts, conts)
    single = [lm.score([p], [c])[0] for p, c in zip(prompts, conts, strict=True)]
    for b, s in zip(batched, single, strict=True):
        assert b.n_tokens == s.n_tokens and b.logprob == pytest.approx(s.logprob, abs=1e-3)
    gens = lm.generate(prompts, max_new_tokens=4)
    alone = [lm.generate([p], max_new_tokens=4)[0] for p in prompts]
    for g, a in zip(gens, alone, strict=True):
        assert g.first_token_prob == pytest.approx(a.first_token_prob, abs=1e-3)
        assert 0 <= g.margin <= g.first_token_prob <= 1
    assert [g.text for g in gens] == [a.text for a in alone]


def test_next_token_distribution_agrees_with_generation(loaded: Any) -> None:
    _, lm = loaded
    dist = lm.next_token_distribution(PROMPTS[0], top_k=3)
    assert [t.prob for t in dist] == sorted((t.prob for t in dist), reverse=True)
    first = lm.generate([PROMPTS[0]], max_new_tokens=1)[0]
    assert first.first_token_prob == pytest.approx(dist[0].prob, abs=1e-4)


def test_greedy_rows_decode_what_generate_decodes(loaded: Any) -> None:
    """Dropping finished rows (tools/lm/_greedy.py) changes no row's tokens nor its first-step probabilities."""
    from tools.lm._greedy import greedy_rows, plain_greedy

    _, lm = loaded
    assert plain_greedy(lm.model)
    batch = lm._encode([*PROMPTS, "Q: Where is Paris?\nA:"], side="left")
    kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": lm.tokenizer.pad_token_id}
    free = lm.model.generate(**batch, eos_token_id=None, **kw)[:, batch["input_ids"].shape[1] :]
    stop = [int(free[0, 1])]  # the first row stops within two tokens, the others when they emit it (or at 6)
    ref = lm.model.generate(**batch, eos_token_id=stop, output_scores=True, return_dict_in_generate=True, **kw)
    got = greedy_rows(lm.model, batch["input_ids"], batch["attention_mask"], 6, stop)
    lengths = [len(t) for t in got.tokens]
    assert lengths[0] <= 2 and max(lengths) > lengths[0]  # a row really left the batch before another
    for row, tokens in enumerate(got.tokens):
        assert ref.sequences[row, batch["input_ids"].shape[1] :].tolist()[: len(tokens)] == tokens
    assert torch.allclose(got.first, torch.softmax(ref.scores[0].float(), dim=-1), atol=1e-5)


def test_a_module_keeping_batch_rows_leaves_decoding_to_generate(loaded: Any) -> None:
    """A module that remembers rows across decoding steps (IKE's / SERAC's context adapters) must not see
    rows leave the batch: with one inside, greedy decoding is ``generate``'s."""
    from tools.lm._greedy import plain_greedy

    _, lm = loaded
    probe = torch.nn.Identity()
    probe.keeps_batch_rows = True  # type: ignore[assignment]
    lm.model.add_module("row_state_probe", probe)
    try:
        assert not plain_greedy(lm.model)
    finally:
        del lm.model.row_state_probe
    assert plain_greedy(lm.model)
