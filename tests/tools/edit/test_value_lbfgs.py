"""ROME's value fit by L-BFGS (``v_optimizer="lbfgs"``, issue 30): the same objective and stop, fewer evaluations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tools.edit._rome as rome_module
from tests.tools.edit._helpers import same as _same
from tests.tools.edit._helpers import state as _state
from tools.edit._rome import ROMEEditor, ROMEHyperParams
from tools.edit._values import ValueOptions, ValueResult, compute_values
from tools.errors import InvalidEditError
from tools.lm._hf import HFLanguageModel

MODELS = ("gpt2-world", "llama-world")


def _editor(corpus: tuple[str, ...], cache_dir: Path, **hp: Any) -> ROMEEditor:
    return ROMEEditor(corpus=corpus, corpus_name="world-400", cache_dir=cache_dir, **hp)


def _fits(monkeypatch: pytest.MonkeyPatch) -> list[ValueResult]:
    """The value fits ROME runs from now on."""
    fits: list[ValueResult] = []

    def recorded(*args: Any, **kwargs: Any) -> ValueResult:
        fits.append(compute_values(*args, **kwargs))
        return fits[-1]

    monkeypatch.setattr(rome_module, "compute_values", recorded)
    return fits


def test_default_is_capped_lbfgs_with_its_own_stop(models: dict[str, HFLanguageModel], corpus: Any) -> None:
    default = ROMEHyperParams(layers=(1,))
    assert (default.value_optimizer(), default.early_stop_loss()) == ("lbfgs_capped", 0.01)
    assert default.value_options().optimizer == "lbfgs_capped" and default.value_options().early_stop_loss == 0.01
    # per family (for_family): GPT-2 stops the capped fit at a stricter loss, LLaMA at 0.01
    stops = {name: ROMEEditor(corpus=corpus).hparams_for(lm).early_stop_loss() for name, lm in models.items()}
    assert stops == {"gpt2-world": 0.008, "llama-world": 0.01}
    assert ROMEEditor(corpus=corpus, v_optimizer="adam").hparams_for(models["gpt2-world"]).early_stop_loss() == 0.01
    adam = ROMEHyperParams(layers=(1,), v_optimizer="adam")  # the fit before issue 30's sixth session, whole
    assert (adam.value_optimizer(), adam.early_stop_loss()) == ("adam", 0.01)
    assert ROMEHyperParams(layers=(1,), v_optimizer="lbfgs").early_stop_loss() == 0.01
    assert ROMEHyperParams(layers=(1,), v_early_stop_loss=0.02).value_options().early_stop_loss == 0.02
    # only Adam fits the output-preservation term: the default falls back to it (an explicit L-BFGS is refused)
    held = ROMEHyperParams(layers=(1,), preserve_output_weight=1.0)
    assert (held.value_optimizer(), held.early_stop_loss()) == ("adam", 0.01)
    # MEMIT's fits keep Adam
    assert ValueOptions(steps=1, lr=1.0, weight_decay=0.0, clamp_norm_factor=1.0, kl_factor=0.0).optimizer == "adam"


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_capped"])
@pytest.mark.parametrize("name", MODELS)
def test_lbfgs_edit_takes_effect_within_the_budget(
    name: str,
    optimizer: str,
    models: dict[str, HFLanguageModel],
    known: Any,
    corpus: Any,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = models[name]
    fits = _fits(monkeypatch)
    editor = _editor(corpus, cache_dir, v_optimizer=optimizer)
    hp = editor.hparams_for(lm)
    before = _state(lm)
    for req in known[name]:
        handle = editor.edit(lm, [req])
        assert lm.generate([req.prompt], max_new_tokens=16)[0].text.startswith(req.target_new)
        handle.rollback()
        assert _same(before, _state(lm))
    assert len(fits) == len(known[name])
    for fit in fits:  # every evaluation (line-search trials included) counts against the Adam step budget
        assert 1 <= fit.steps <= hp.v_num_grad_steps
        assert fit.rows_run > 0 and fit.rows_run % fit.steps == 0  # the same rows at every evaluation
        if fit.stop_steps[0] >= 0:  # stopped: at the first evaluation below the stop, as the Adam fit does
            assert fit.nll[0] < hp.early_stop_loss() and fit.stop_steps[0] == fit.steps - 1
        else:
            assert fit.steps == hp.v_num_grad_steps


@pytest.mark.parametrize("optimizer", ["lbfgs", "lbfgs_capped"])
def test_lbfgs_fits_in_fewer_evaluations(
    optimizer: str,
    models: dict[str, HFLanguageModel],
    known: Any,
    corpus: Any,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = models["gpt2-world"]
    fits = _fits(monkeypatch)
    for name in ("adam", optimizer):  # the same stop for both (the defaults differ: lbfgs_capped's is stricter)
        editor = _editor(corpus, cache_dir, v_optimizer=name, v_early_stop_loss=0.01)
        for req in known["gpt2-world"]:
            editor.compute(lm, [req])
    adam, lbfgs = fits[: len(fits) // 2], fits[len(fits) // 2 :]
    assert sum(f.steps for f in lbfgs) < sum(f.steps + (f.stop_steps[0] >= 0) for f in adam)


def test_bad_optimizer_rejected(models: dict[str, HFLanguageModel], known: Any) -> None:
    with pytest.raises(InvalidEditError):
        ROMEHyperParams(layers=(1,), v_optimizer="sgd")
    with pytest.raises(InvalidEditError):
        ROMEHyperParams(layers=(1,), v_optimizer="lbfgs", preserve_output_weight=1.0)
    with pytest.raises(InvalidEditError):
        ROMEHyperParams(layers=(1,), v_early_stop_loss=-0.1)
    lm = models["gpt2-world"]
    options = ValueOptions(steps=2, lr=1.0, weight_decay=0.0, clamp_norm_factor=1.0, kl_factor=0.0, optimizer="sgd")
    with pytest.raises(ValueError, match="optimizer"):
        compute_values(lm, "transformer.h.1.mlp.c_proj", known["gpt2-world"][:1], ["{}"], options)
