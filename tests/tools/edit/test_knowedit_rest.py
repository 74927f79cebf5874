"""AlphaEdit's projector, IKE's context adapter (cached generation = the demonstration typed by hand), LoRA."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import load_models, same, state
from tools.edit import EditRequest, get_editor, journal_for
from tools.edit._alphaedit import null_space_projector, preserved_prompt_keys, projected_solve, without_keys
from tools.edit._context import ContextAdapter
from tools.edit._delta import LowRank, WeightDelta
from tools.errors import InvalidEditError

REQ = EditRequest("Alibaba's CEO is", "Alibaba", "Takahiro Hachigō", "Daniel Zhang", "company_ceo")


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    return load_models()


def test_null_space_projector_removes_the_high_energy_directions() -> None:
    basis = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    cov = basis @ torch.diag(torch.tensor([1e-4, 1e-4, 1e-3, 1.0, 10.0, 100.0], dtype=torch.float64)) @ basis.T
    proj, dim = null_space_projector(cov, 1e-5)
    assert dim == 2  # the two smallest hold 1.8e-6 of the trace; with the third it would be 1.1e-5
    assert torch.allclose(proj @ proj, proj, atol=1e-10)
    assert float((proj @ basis[:, 5]).norm()) < 1e-10 and float((proj @ basis[:, 0]).norm()) > 0.999


def _spd(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=gen))[0]
    return basis @ torch.diag(torch.logspace(-4, 2, n, dtype=torch.float64)) @ basis.T


def test_projected_solve_is_the_papers_update_and_spares_the_preserved_keys() -> None:
    cov = _spd(8, 1)
    proj, dim = null_space_projector(cov, 1e-2)
    assert 0 < dim < 8
    keys = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    gram = keys @ keys.T
    right = projected_solve(proj, keys, gram, 0.5)
    # the reference implementation's form: (P G + α I)⁻¹ P K, the solve over the key (input) space
    paper = torch.linalg.solve(proj @ gram + 0.5 * torch.eye(8, dtype=torch.float64), proj @ keys)
    assert torch.allclose(right, paper, atol=1e-10)
    preserved = (torch.eye(8, dtype=torch.float64) - proj) @ torch.randn(8, 5, dtype=torch.float64)
    assert float((preserved.T @ right).abs().max()) < 1e-10  # ΔW k0 = 0 outside the null space
    assert float((keys.T @ right).diagonal().abs().min()) > 1e-3  # the new keys still get a response


def test_projected_solve_with_the_whole_space_and_whitening_is_memits() -> None:
    cov = _spd(6, 3)
    keys = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    eye = torch.eye(6, dtype=torch.float64)
    right = projected_solve(eye, keys, keys @ keys.T, 1e-3, 10.0 * cov)
    memit = torch.linalg.solve(10.0 * cov + keys @ keys.T + 1e-3 * eye, keys)
    assert torch.allclose(right, memit, atol=1e-10)
    plain = projected_solve(eye, keys, keys @ keys.T, 1e-3)
    assert not torch.allclose(plain, memit, atol=1e-3)  # without the weighting it is a plain ridge solve


def test_without_keys_takes_the_preserved_keys_out_of_the_null_space() -> None:
    gen = torch.Generator().manual_seed(3)
    proj, _ = null_space_projector(_spd(10, 2), 0.5)
    keys = torch.randn(10, 2, dtype=torch.float64, generator=gen)
    reduced, taken = without_keys(proj, keys, 1.0)
    assert taken == 2
    assert torch.allclose(reduced @ reduced, reduced, atol=1e-10) and torch.allclose(reduced, reduced.T, atol=1e-12)
    assert float((reduced @ keys).norm()) < 1e-9 * float(keys.norm())  # the preserved keys get no response
    other = torch.randn(10, dtype=torch.float64, generator=gen)
    assert float((reduced @ other).norm()) > 0.1 * float((proj @ other).norm())  # the rest of the null space stays
    assert without_keys(proj, torch.zeros(10, 0, dtype=torch.float64), 0.9) == (proj, 0)


def test_alphaedit_spares_the_preserved_prompts_and_skips_the_edited_subjects(models: dict[str, Any]) -> None:
    lm = models["gpt2-world"]
    corpus = ("The CEO of ABB Group is Ulrich Spiesshofer.",) * 20
    fast = {"layers": (0,), "v_num_grad_steps": 3, "n_context_templates": 1, "preserve_weight": 0.0}
    kept = ("A glacier is a slow river of ice.", "glacier")
    own = ("Alibaba is a company.", "Alibaba")  # the edited subject: not preserved
    edit = get_editor("alphaedit", corpus=corpus, preserve_prompts=(kept, own), preserve_prompt_energy=1.0, **fast)
    plain = get_editor("alphaedit", corpus=corpus, **fast)
    path = "transformer.h.0.mlp.c_proj"
    right_delta, base_delta = edit.compute(lm, [REQ]), plain.compute(lm, [REQ])
    assert isinstance(right_delta, WeightDelta) and isinstance(base_delta, WeightDelta)
    right = right_delta.updates[f"{path}.weight"]
    base = base_delta.updates[f"{path}.weight"]
    assert isinstance(right, LowRank) and isinstance(base, LowRank)
    spared = preserved_prompt_keys(lm, path, [kept[0]]).float()  # (in, tokens)
    own_keys = preserved_prompt_keys(lm, path, [own[0]]).float()
    key = preserved_prompt_keys(lm, path, [REQ.prompt]).float()[:, -2:]  # "Alibaba's" ... "CEO is": the edited key

    def ratio(update: LowRank, keys: torch.Tensor) -> float:  # GPT-2's Conv1D: the input side is left, (in, 1)
        return float((update.left.T @ keys).abs().max() / (update.left.T @ key).abs().max())

    assert ratio(right, spared) < 1e-3 and ratio(base, spared) > 1e-2  # the preserved prompt gets no response
    assert ratio(right, own_keys) > 1e-2  # the edited subject's own prompt is not preserved
    with pytest.raises(InvalidEditError):
        get_editor("alphaedit", corpus=corpus, preserve_prompts=(("", "x"),)).compute(lm, [REQ])


def test_alphaedit_sequential_batches_constrain_by_the_earlier_batches_keys(models: dict[str, Any]) -> None:
    """The paper's Kp: a second batch computed on the edited model keeps its update off the first batch's key."""
    lm = models["gpt2-world"]
    before = state(lm)
    corpus = ("The CEO of ABB Group is Ulrich Spiesshofer.",) * 20
    fast = {"layers": (0,), "v_num_grad_steps": 3, "n_context_templates": 1, "preserve_weight": 0.0}
    second = EditRequest("Siemens's CEO is", "Siemens", "Ada Lovelace", "Joe Kaeser", "company_ceo")
    path = "transformer.h.0.mlp.c_proj"
    first_key = preserved_prompt_keys(lm, path, [REQ.subject]).float()[:, -1:]  # the bare prompt's key (Kp)
    own_key = preserved_prompt_keys(lm, path, [second.subject]).float()[:, -1:]

    def response(editor: Any) -> float:  # |ΔW k_first| / |ΔW k_own| of the second batch's update
        delta = editor.compute(lm, [second])
        assert isinstance(delta, WeightDelta)
        update = delta.updates[f"{path}.weight"]
        assert isinstance(update, LowRank)  # GPT-2's Conv1D: the input side is left, (in, r)
        return float((update.left.T @ first_key).norm() / (update.left.T @ own_key).norm())

    with_kp = get_editor("alphaedit", corpus=corpus, **fast)  # the defaults (whitened); the paper's solve: 8e-4
    without_kp = get_editor("alphaedit", corpus=corpus, previous_keys=False, **fast)
    alone = response(with_kp)  # nothing in the journal yet: Kp is empty, both editors solve the same system
    assert alone == pytest.approx(response(without_kp), rel=1e-6)
    handle = with_kp.apply(lm, with_kp.compute(lm, [REQ]))
    try:
        constrained, free = response(with_kp), response(without_kp)
    finally:
        handle.rollback()
    assert constrained < 0.01 * free  # measured: 1e-5 against 0.26
    assert same(before, state(lm)) and not journal_for(lm.model).entries


def test_alphaedit_rejects_bad_settings(models: dict[str, Any]) -> None:
    lm = models["gpt2-world"]
    before = state(lm)
    for bad in ({"nullspace_energy": 1.5}, {"alpha": 0.0}):
        with pytest.raises(InvalidEditError):
            get_editor("alphaedit", corpus=("The CEO of ABB Group is Ulrich Spiesshofer.",), **bad).compute(lm, [REQ])
    assert same(before, state(lm)) and not journal_for(lm.model).entries


@pytest.mark.parametrize("name", ["gpt2-world", "llama-world"])
def test_ike_generation_equals_the_demonstration_typed_by_hand(name: str, models: dict[str, Any]) -> None:
    lm = models[name]
    before = state(lm)
    neighbour = "Nortel's CEO is"
    plain = [g.text for g in lm.generate([neighbour, REQ.prompt], max_new_tokens=12)]
    ike = get_editor("ike")
    handle = ike.apply(lm, ike.compute(lm, [REQ]))
    assert isinstance(journal_for(lm.model).adapters()[lm.model.base_model_prefix], ContextAdapter)
    demo = f"New Fact: {REQ.prompt} {REQ.target_new}\n{REQ.prompt} {REQ.target_new}.\n"
    batch = [g.text for g in lm.generate([neighbour, REQ.prompt], max_new_tokens=12)]
    single = lm.generate([REQ.prompt], max_new_tokens=12)[0].text
    handle.rollback()
    by_hand = lm.generate([demo + REQ.prompt], max_new_tokens=12)[0].text
    assert batch[0] == plain[0]  # out of scope: the unedited model
    assert batch[1] == single == by_hand  # padded batch, single row and the typed text agree
    assert same(before, state(lm)) and not journal_for(lm.model).adapters()


def test_ike_teacher_forced_logits_are_the_row_positions(models: dict[str, Any]) -> None:
    lm = models["gpt2-world"]
    ids = torch.tensor([lm.tokenizer(REQ.prompt + " Takahiro", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        plain = lm.model(ids).logits
        ike = get_editor("ike")
        handle = ike.apply(lm, ike.compute(lm, [REQ]))
        edited = lm.model(ids).logits
        handle.rollback()
    assert edited.shape == plain.shape and not torch.equal(edited, plain)


def test_lora_delta_is_low_rank_and_rolls_back(models: dict[str, Any]) -> None:
    lm = models["llama-world"]
    before = state(lm)
    editor = get_editor("lora", rank=4)
    delta = editor.compute(lm, [REQ])
    assert isinstance(delta, WeightDelta)
    (update,) = delta.updates.values()
    assert isinstance(update, LowRank) and update.left.shape[1] == 4
    editor.apply(lm, delta).rollback()
    assert same(before, state(lm))


def test_serac_answers_in_scope_and_leaves_the_rest_to_the_base_model(models: dict[str, Any], corpus: Any) -> None:
    lm = models["gpt2-world"]
    before = state(lm)
    outside = ["Nortel's CEO is", "The capital of France is"]
    plain = [g.text for g in lm.generate(outside, max_new_tokens=12)]
    serac = get_editor("serac", corpus=corpus)
    delta = serac.compute(lm, [REQ])
    assert 0 < delta.info["thresholds"][0] < 1
    handle = serac.apply(lm, delta)
    edited = [g.text for g in lm.generate([*outside, REQ.prompt], max_new_tokens=12)]
    handle.rollback()
    assert edited[:2] == plain
    assert edited[2].startswith(REQ.target_new)
    assert same(before, state(lm))


def test_serac_needs_a_corpus(models: dict[str, Any]) -> None:
    with pytest.raises(InvalidEditError):
        get_editor("serac").compute(models["gpt2-world"], [REQ])
