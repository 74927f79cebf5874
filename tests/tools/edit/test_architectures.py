"""The editor contract on every supported ``model_type``, with tiny random models built from a config.

For every registered editor on every type of :data:`tools.edit._family_data.MODEL_TYPES`: compute leaves the
model bit-identical (weights, outputs, flags, no hooks left); apply raises the target's log-probability;
save / load round-trips the edit and its adapters (identical outputs, the journal still rolls back); rollback
restores the state dict bit for bit; a layer outside the model gives an ``EditError`` and changes nothing.
Every editor also on the LLaMA type in bfloat16 on the CPU (dtype and device kept, the target moves, rollback
exact). The models are noise: only the paths are proven.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import REPO
from tests.tools import tiny_archs
from tests.tools.edit._helpers import same, state
from tools.edit import EditRequest, editor_names, family_of, get_editor, journal_for, load_edited, save_edited
from tools.edit._family import get_module, linear_weight
from tools.edit._family_data import MODEL_TYPES, supported_types_table
from tools.errors import EditError, InvalidEditError
from tools.lm import HFLanguageModel

REQUEST = EditRequest("The capital of France is", "France", " Nokia", " Paris")
PROBE = torch.tensor([[5, 60, 200, 8, 90, 250, 11]])  # ids below the tiny vocabulary's 300


@pytest.fixture(scope="module", params=tiny_archs.MODEL_TYPE_NAMES)
def arch(request: pytest.FixtureRequest, tiny_tokenizer: Any) -> HFLanguageModel:
    """One tiny random model per type, built once for this module (tests leave it as they found it)."""
    return tiny_archs.build(str(request.param), tiny_tokenizer)


@pytest.fixture
def lm(arch: HFLanguageModel) -> Any:
    """The module's model of this type; a failed test leaves no edit behind for the next one."""
    yield arch
    journal_for(arch.model).rollback_all()


@pytest.fixture(scope="module")
def small_corpus(corpus: tuple[str, ...]) -> tuple[str, ...]:
    """48 world documents: enough for the key statistics of width-96..256 MLPs."""
    return corpus[:48]


# MEMIT's corpus terms (preservation KL, corpus phrasings) cost 38-66 s per tiny model at their defaults, too much
# for 13 types; they run the same forward passes on every architecture and are proven on the reference models
# (test_memit.py). Measured at the defaults: log p(target) -11.01 -> -9.44 (gpt2), -12.29 -> -6.71 (llama),
# -12.76 -> -7.84 (falcon).
LIGHT = {"memit": {"preserve_weight": 0.0, "corpus_phrasings": 0, "v_num_grad_steps": 60}}


def _editor(method: str, corpus: tuple[str, ...], cache_dir: Path, lm: HFLanguageModel | None = None, **hp: Any) -> Any:
    settings = LIGHT.get(method, {}) | hp
    if method == "mend" and lm is not None and "weights" not in settings:
        settings["weights"] = str(_untrained_mend(lm, cache_dir))
    if method == "serac" and lm is not None and "weights" not in settings:  # the trained-counterfactual path
        settings |= {"counterfactual": "trained", "weights": str(_untrained_serac(lm, cache_dir))}
    return get_editor(method, corpus=corpus, corpus_name="world-48", cache_dir=cache_dir, **settings)


def _untrained_mend(lm: HFLanguageModel, directory: Path) -> Path:
    """MEND's network untrained (the normalised gradient, identity at init) for this tiny model: MEND is trained
    per model (``factagent mend-train``) and these models are noise, so only its paths are proven here."""
    from tools.edit._mend import MENDHyperParams, mend_params
    from tools.edit._mend_net import MendNetwork, save_mend

    layers = MENDHyperParams.for_family(family_of(lm.model)).layers
    params, shapes = mend_params(lm.model, layers)
    name = f"mend-{lm.model.config.model_type}-{lm.model.dtype}.safetensors".replace("torch.", "")
    return save_mend(MendNetwork(params, shapes, rank=4), directory / name)


def _untrained_serac(lm: HFLanguageModel, directory: Path) -> Path:
    """SERAC's counterfactual model untrained (the first block of this tiny model, ``factagent serac-train``
    trains it per model), so that the trained-counterfactual path is proven on every type."""
    from tools.edit._serac_cf import counterfactual_for, save_counterfactual

    cf = counterfactual_for(lm, blocks=1)
    name = f"serac-{lm.model.config.model_type}-{lm.model.dtype}.safetensors".replace("torch.", "")
    return save_counterfactual(cf, directory / name)


def _logits(lm: HFLanguageModel) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(PROBE.to(lm.device)).logits.clone()


def _logprob(lm: HFLanguageModel, req: EditRequest) -> float:
    return lm.score([req.prompt], [req.target_new])[0].logprob


def test_every_template_of_the_family_resolves(arch: HFLanguageModel) -> None:
    family = family_of(arch.model)
    model = arch.model
    assert family.model_type == model.config.model_type
    assert family.n_layers == tiny_archs.LAYERS and family.hidden == tiny_archs.WIDTH
    for layer in range(family.n_layers):
        for template in (family.block, family.mlp, family.mlp_in, family.attn_out):
            get_module(model, family.path(template, layer))
        out = linear_weight(get_module(model, family.path(family.mlp_out, layer)))
        assert tuple(out.shape) == (family.hidden, family.intermediate)
        up = linear_weight(get_module(model, family.path(family.mlp_in, layer)))
        assert up.shape[1] == family.hidden and up.shape[0] in (family.intermediate, 2 * family.intermediate)
    assert get_module(model, family.embed) is model.get_input_embeddings()
    assert get_module(model, family.lm_head) is model.get_output_embeddings()
    get_module(model, family.final_norm)
    tied = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert tied == bool(model.config.tie_word_embeddings)


# measured: on the random OLMo WISE's fit stops at NLL 6.49 and the prompt's router score (2.59) stays under
# the threshold floor (2.75), so the side memory never routes; the paths (compute, save, rollback) are proven on
# every other type and the layout is the LLaMA one
_NOT_MOVED = {("olmo", "wise")}
# in-context editors prepend the edit to the input; a random model does not learn from its context, so the
# target's log-probability changes but need not rise (the reference models' contract shows the edits work)
_IN_CONTEXT = {"ike", "serac"}


@pytest.mark.slow
@pytest.mark.parametrize("method", editor_names())
def test_editor_contract(
    method: str, lm: HFLanguageModel, small_corpus: tuple[str, ...], cache_dir: Path, tmp_path: Path
) -> None:
    editor = _editor(method, small_corpus, cache_dir, lm)
    before, logits, lp = state(lm), _logits(lm), _logprob(lm, REQUEST)

    delta = editor.compute(lm, [REQUEST])
    assert same(before, state(lm)) and torch.equal(logits, _logits(lm)), f"{method}: compute changed the model"
    assert not lm.model.training and not any(m._forward_hooks or m._forward_pre_hooks for m in lm.model.modules())

    handle = editor.apply(lm, delta)
    edited_lp = _logprob(lm, REQUEST)
    if (lm.model.config.model_type, method) in _NOT_MOVED:
        assert edited_lp == lp, "WISE now edits the random OLMo: drop it from _NOT_MOVED"
    elif method in _IN_CONTEXT:
        assert edited_lp != lp, f"{method}: the demonstration did not reach the prompt"
    else:
        assert edited_lp > lp, f"{method}: log p(target) went from {lp:.3f} to {edited_lp:.3f}"

    loaded = load_edited(save_edited(lm, tmp_path / "edited"), device="cpu")
    assert torch.equal(_logits(lm), _logits(loaded)) and len(journal_for(loaded.model)) == 1
    journal_for(loaded.model).rollback_all()
    assert same(before, state(loaded)), f"{method}: the loaded journal does not roll back"

    handle.rollback()
    assert same(before, state(lm)) and torch.equal(logits, _logits(lm)), f"{method}: rollback is not exact"
    assert len(journal_for(lm.model)) == 0

    with pytest.raises(EditError):
        _editor(method, small_corpus, cache_dir, lm, layers=(tiny_archs.LAYERS,)).compute(lm, [REQUEST])
    assert same(before, state(lm)) and len(journal_for(lm.model)) == 0


def _has(model: Any, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def _gqa(model: Any) -> bool:
    return int(model.config.num_key_value_heads) < int(model.config.num_attention_heads)


# each type's listed features, checked on its tiny model (so the README's claims are the tested configs')
FEATURES: dict[str, Any] = {
    "gpt2": lambda m: type(m.get_submodule("transformer.h.0.mlp.c_proj")).__name__ == "Conv1D",
    "llama": _gqa,
    "mistral": lambda m: _gqa(m) and m.config.sliding_window == 16,
    "qwen2": lambda m: _gqa(m) and m.get_submodule("model.layers.0.self_attn.q_proj").bias is not None,
    "qwen3": lambda m: _gqa(m) and _has(m, "model.layers.0.self_attn.q_norm"),
    "gemma": lambda m: (
        bool(torch.all(m.model.norm.weight == 0))  # (1 + w) RMSNorm: w starts at 0
        and float(m.model.embed_tokens.embed_scale) == tiny_archs.WIDTH**0.5
        and m.config.tie_word_embeddings
    ),
    "gemma2": lambda m: _has(m, "model.layers.0.post_feedforward_layernorm") and m.config.final_logit_softcapping,
    "olmo": lambda m: not list(m.get_submodule("model.layers.0.input_layernorm").parameters()),
    "olmo2": lambda m: (
        _has(m, "model.layers.0.post_feedforward_layernorm") and _has(m, "model.layers.0.self_attn.q_norm")
    ),
    "phi3": lambda m: _has(m, "model.layers.0.self_attn.qkv_proj") and _has(m, "model.layers.0.mlp.gate_up_proj"),
    "gptj": lambda m: m.config.rotary_dim < m.config.n_embd // m.config.n_head,
    "gpt_neox": lambda m: m.config.use_parallel_residual and not m.config.tie_word_embeddings,
    "falcon": lambda m: m.config.multi_query and m.config.parallel_attn,
}


def test_the_tiny_model_has_the_listed_features(arch: HFLanguageModel) -> None:
    assert FEATURES[arch.model.config.model_type](arch.model)


def test_the_readme_table_is_generated_from_the_data() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- model-types:start -->\n", "<!-- model-types:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == supported_types_table()
    assert len(MODEL_TYPES) >= 10 and set(FEATURES) == set(MODEL_TYPES)


def test_an_unsupported_architecture_is_refused_by_name(tiny_tokenizer: Any) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("bloom", vocab_size=len(tiny_tokenizer), hidden_size=32, n_layer=1, n_head=2)
    model = AutoModelForCausalLM.from_config(config)
    with pytest.raises(InvalidEditError, match=r"unsupported architecture 'bloom'.*gpt_neox"):
        family_of(model)
    lm = HFLanguageModel(model, tiny_tokenizer, name="tiny-bloom")
    with pytest.raises(InvalidEditError):
        get_editor("rome", corpus=("a b c",)).compute(lm, [REQUEST])


@pytest.fixture(scope="module")
def bf16_llama(tiny_tokenizer: Any) -> Any:
    lm = tiny_archs.build("llama", tiny_tokenizer, dtype=torch.bfloat16)
    yield lm
    journal_for(lm.model).rollback_all()


@pytest.mark.slow
@pytest.mark.parametrize("method", editor_names())
def test_editors_keep_bfloat16_and_the_device(
    method: str, bf16_llama: HFLanguageModel, small_corpus: tuple[str, ...], cache_dir: Path
) -> None:
    lm = bf16_llama
    before, lp = state(lm), _logprob(lm, REQUEST)
    editor = _editor(method, small_corpus, cache_dir, lm)
    handle = editor.apply(lm, editor.compute(lm, [REQUEST]))
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in lm.model.parameters()} == {"cpu"}
    edited_lp = _logprob(lm, REQUEST)
    if method in _IN_CONTEXT:
        assert edited_lp != lp, f"{method} in bf16: the demonstration did not reach the prompt"
    else:
        assert edited_lp > lp, f"{method} in bf16: log p(target) went from {lp:.3f} to {edited_lp:.3f}"
    handle.rollback()
    assert same(before, state(lm))
