"""AlphaEdit (Fang et al., 2025, "AlphaEdit: Null-Space Constrained Knowledge Editing"): MEMIT projected.

MEMIT's update of a layer, ``ΔW = R Kᵀ (λ C + K Kᵀ)⁻¹``, responds to every key, and a batch's responses add up
on the unrelated text (:mod:`tools.edit._preserve`). AlphaEdit multiplies the update on the right by ``P``,
the projector onto the *null space* of the preserved knowledge's keys ``K0``: ``ΔW P k0 = 0`` for every key
``k0`` in the span of ``K0``, so the preserved associations keep their outputs exactly, whatever the values.
Its closed form (their eq. 14) over the new keys ``K1`` and the keys ``Kp`` of earlier edits::

    ΔW = R K1ᵀ P (Kp Kpᵀ P + K1 K1ᵀ P + α I)⁻¹ · P

Here:

* ``K0 K0ᵀ`` is the second moment ``C = E[k kᵀ]`` of the layer's keys over the world corpus
  (:func:`~tools.edit._stats.second_moment`, shared with ROME and MEMIT; the reference implementation's ``P``
  comes from the same statistics over Wikipedia). ``P = U Uᵀ`` over the eigenvectors of ``C`` of smallest
  eigenvalue whose eigenvalues sum to at most ``nullspace_energy`` of the trace: the preserved keys keep at
  least ``1 - nullspace_energy`` of their energy out of the update's reach. (The paper keeps the eigenvalues
  under an absolute ``1e-2`` of an unnormalised sum. On the reference models one direction holds 48% of
  GPT-2's layer-0 key energy, so a threshold relative to the largest eigenvalue keeps 739 of 768 dimensions
  at ``1e-2`` and a batch of 10 lost 0.36 greedy locality; by energy share, ``1e-2`` keeps 365 (GPT-2 layer
  0), 198 (GPT-2 layer 1) and 60 of 512 (LLaMA layer 0), the default ``0.2`` 741, 593 and 352.)
* The right factor is written symmetric, ``right = P (P (λ C + K1 K1ᵀ + Kp Kpᵀ) P + α I)⁻¹ P K1``
  (``(in, n)``, :func:`projected_solve`), and the left factor is fitted through the updates exactly as
  MEMIT's default objective does (:class:`~tools.edit._memit.MEMITEditor`, ``exact_objective``); the paper's
  residual spread (``exact_objective=False``) goes through the same solve. ``λ C`` is MEMIT's weighting
  (``λ`` as MEMIT's for the batch) kept inside the null space (``whiten``, the default); the paper drops it
  (``whiten=False``, and its ``α`` is 1 there). The defaults (``whiten``, ``nullspace_energy=0.2``,
  ``α=1e-2``) were chosen on the diagnosis below and one batch of 10 DEV edits (``edits_lifelong.jsonl``, seed
  1, GPT-2; reliability / generalization / locality, greedy, teacher-forced in brackets): 1.00 / 0.867 /
  0.840 (1.00 / 0.935 / 0.878) at 43 s per edit, against the paper's solve at ``1e-2`` and ``α=1`` (the
  earlier defaults) 1.00 / 0.700 / 0.660 (1.00 / 0.878 / 0.746) at 150 s per edit (2 cores at load 7-8).
  On the test edits, LLaMA, ``edit-bench --method alphaedit --T 10`` (the cases of the runs below): 1.00 /
  0.90 / 0.92 (1.00 / 0.975 / 0.955) at 21 s per edit, against MEMIT's 1.00 / 0.80 / 0.88 and the paper's
  solve's 1.00 / 0.475 / 0.92. GPT-2, ``--T 100 --edit-mode batch`` (the cases of the runs below): 0.89 /
  0.58 / 0.645 (0.97 / 0.79 / 0.84) at 38 s per edit, against MEMIT's 0.88 / 0.66 / 0.68 and the paper's
  solve's 0.70 / 0.41 / 0.39: the 0.90 locality target is not met. LLaMA, the same (then ``--method memit`` on
  the same cases): 0.99 / 0.67 / 0.87 (0.997 / 0.83 / 0.93) at 20.4 s per edit, against MEMIT's 1.00 / 0.68 /
  0.885 (0.999 / 0.84 / 0.94) at 15.8 s per edit: not met there either.
* Preserved prompts (``preserve_prompts``, issue 22): ``(prompt, subject)`` texts whose keys at *every*
  position are taken out of the null space as well (:func:`without_keys`: the singular directions of ``P K``
  holding ``preserve_prompt_energy`` of its energy), so the update gives them no response; those whose subject
  is being edited are skipped. ``concept-bench`` passes the world's train-side definition prompts (never its
  locality prompts, :mod:`eval.concepts._dev`). On LLaMA they cut block 0's null space from 351 to 92
  dimensions at ``nullspace_energy=0.2``; on 18 dev concept edits (README "Concept-level editing") the
  projected edit kept less greedy locality than ROME (0.58-0.67 against 0.73).
* ``Kp``: the bare-prompt keys of the requests of the earlier ``alphaedit`` entries in the model's journal
  (so a rolled-back edit stops constraining later ones), measured on the model as it is now. This is the
  paper's sequential protocol: ``edit-bench --T 1000 --edit-mode batch --batch-size 100`` computes each batch
  on the model holding the earlier ones, so batch ``j`` is constrained by the keys of batches ``1..j-1`` (a
  second batch's update answers the first batch's key with 1e-5 of its own key's response, 0.26 with
  ``previous_keys=False``: ``tests/tools/edit/test_knowedit_rest.py``). The world's own edits hold 561 (GPT-2)
  and 581 (LLaMA) the models answer, so T=1000 needs ``--dataset world-lifelong`` (1,943 / 2,029).
* MEMIT's preservation term stays on (``preserve_weight=1``). The projection alone, without it, did not keep
  the reference models' answers (the paper's solve): ``edit-bench --method alphaedit --T 10 --hparam
  preserve_weight=0`` on GPT-2, reliability / generalization / locality greedy (teacher-forced): 1.0 / 0.67 /
  0.40 (1.0 / 0.78 / 0.64) with the relative threshold, 1.0 / 0.57 / 0.20 (1.0 / 0.73 / 0.47) with
  ``nullspace_energy=1e-2``: the subject's keys carry no more of their energy in the null space than a corpus
  key does, so the fitted update grows until it moves the preserved keys as much as MEMIT's.

Diagnosis against the paper (issue 29). The figures below probe the solve alone, without the value fit
(``bench/alphaedit_diag.py``), on 10 DEV edits (``edits_lifelong.jsonl``), GPT-2, layers 0 / 1 unless stated.
Every variant's right factor is scaled as in MEMIT (``right_i · k_i = 1`` on request ``i``'s bare key), so
``right · k`` is ``||ΔW k||`` relative to the edit's own change; "response" is the RMS over the requests and
over every position of the 50 locality prompts (prompt and answer), paraphrases at the subject's last token:

* Where ``P`` acts: on the key (input) space, ``(in, in)``, as in the reference implementation
  (``(P G + α I)⁻¹ P K``, shown equal to :func:`projected_solve`'s symmetric form by the unit tests).
* ``K0``: the reference implementation takes ``P`` from the same corpus second moment as MEMIT's ``C`` (all
  tokens of its statistics texts), as here. Its null space does not separate the edits from the rest: at
  ``nullspace_energy=1e-2`` (365 / 198 dimensions) the edits' keys keep 0.017 / 0.011 of their energy in it, the
  locality positions 0.012 / 0.011, a corpus key 0.010. ``K0`` from the subjects' keys instead (the last subject
  token of 333 KNOWN facts' cloze prompts, the test edits' subjects, their locality prompts and the batch left
  out): the edits' keys keep 0.052 / 0.110 of their energy in its null space, the locality positions 0.120 /
  0.395: an edited subject's key *is* a preserved subject key, and the rest of a sentence is not protected.
* Response of the locality positions: MEMIT (``(λ C + K Kᵀ)⁻¹ K``) 0.133 / 0.194; the paper's solve at ``1e-2``
  (the earlier default) 0.205 / 0.565 (the subject-key ``K0``: 0.326 / 0.626; corpus plus subject keys: 0.266 / 0.682);
  ``1e-3`` 0.476 / 0.735, ``5e-2`` 0.176 / 0.374, ``0.2`` 0.277 / 0.287. The paraphrases' response stays
  0.92-1.06 throughout. ``α`` from 0.01 to 100 moves these by at most 0.13 (worse below 1): the solve is
  close to ``P K / α``.
* Why: MEMIT's solve weighs each direction by ``C⁻¹``, so among the low-energy directions it still prefers
  those in which the edit's key stands out from the corpus's. The paper's solve weighs every null-space
  direction alike (``α I``), and an edit's key has no more of its energy there than any other key (above), so
  every position's null-space component answers the update about as much as the subject's does. Whitening
  inside the null space (``whiten``: ``P (λ C + K Kᵀ) P + α I``, ``α=1e-2``) gives 0.142 / 0.287 at ``5e-2``,
  0.135 / 0.222 at ``0.2`` and 0.134 / 0.200 at ``0.5``: it tends to MEMIT from above as the null space grows,
  never below it.
* Layers: at layers 2 / 3 MEMIT's locality response is 0.242 / 0.212 and the paraphrases' only 0.79 / 0.78;
  the paper's solve at ``1e-2`` 1.008 / 1.191.
* LLaMA, same probe: MEMIT 0.143 / 0.187; the paper's solve at ``1e-2`` 0.548 / 0.546; whitened ``0.2`` 0.170 / 0.197;
  at layer 1 the edits' keys do keep more null-space energy than a corpus key (0.029 against 0.010 at
  ``1e-2``), not enough to beat ``C⁻¹``.
* The preservation term is not counted twice: it shapes the values (the left factor), the projection the
  keys' side (the right one); without it the projected update lost more locality (above).

:meth:`AlphaEditEditor.compute` leaves the model untouched; the delta is a :class:`~tools.edit.LowRank` per
layer, rolled back exactly by the journal. Because each delta is fitted with the earlier edits' keys and values
in place, AlphaEdit edits are *replayed* (``replay_on_rollback``): rolling back edit ``k`` undoes the later
alphaedit edits and ``k``, then recomputes the later ones in order on the model without ``k``, atomically
(:mod:`tools.edit._journal`). Without it, rolling back edit 2 of 3 on GPT-2 lost edit 3 (BASF's new CEO); with
it the contract suite's rollback-k-of-n test passes on both models.

Cost of a batch: the key statistics are computed once per model and layer and cached on disk
(:func:`~tools.edit._stats.second_moment`), and the projector's eigendecomposition and the ``(in, in)``
solve (float64, ``in`` = 768 on GPT-2) take well under a second per layer. A sampling profile of
``edit-bench --method alphaedit --T 100`` on GPT-2 (one stack a second for 9.5 min of a loaded machine) found
no sample in them: the time is MEMIT's value fit (:func:`~tools.edit._values.compute_values`), up to
``v_num_grad_steps`` forward and backward passes over every request's templated prompts (with ``v_joint_fit=False``
only those of values not yet stopped, see :mod:`tools.edit._memit`) plus the preservation texts (forward : backward
samples about 3 : 2, the baseline probing included; a third of the forward samples in GPT-2's tanh GELU). A batch
of 100 therefore costs at least MEMIT's; on 2 cores shared by 10-20 jobs it got 66 s of CPU in 9.5 min and was
stopped. With the earlier defaults (the paper's solve, ``nullspace_energy=1e-2``, ``α=1``): ``edit-bench --method
memit,alphaedit --T 10`` (one batch of 10 each, the same cases, GPT-2; reliability / generalization / locality,
greedy, teacher-forced in brackets): MEMIT 1.00 / 1.00 / 0.88 (1.00 /
1.00 / 0.92) at 47 s per edit, AlphaEdit 0.90 / 0.95 / 0.76 (0.98 / 0.905 / 0.82) at 139 s per edit: with
the preservation term on, the projection costs locality here instead of adding it. LLaMA, same command:
MEMIT 1.00 / 0.80 / 0.88 (1.00 / 0.89 / 0.945) at 16 s per edit, AlphaEdit 1.00 / 0.475 / 0.92 (1.00 / 0.68 /
0.97) at 28 s per edit: locality gained, generalization lost. A batch of 100 on GPT-2 (``--T 100 --edit-mode
batch``, same run, same cases): MEMIT 0.88 / 0.66 / 0.68 (0.97 / 0.83 / 0.85), AlphaEdit 0.70 / 0.41 / 0.39
(0.88 / 0.68 / 0.64): with this few key dimensions the projection costs more than it protects.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from tools.edit._delta import EditGram, WeightDelta
from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._journal import journal_for
from tools.edit._keys import subject_keys
from tools.edit._memit import MEMITEditor, MEMITHyperParams, _layout
from tools.edit._request import EditRequest
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = [
    "AlphaEditEditor",
    "AlphaEditHyperParams",
    "check_prompt_pairs",
    "null_space_projector",
    "preserved_prompt_keys",
    "projected_solve",
    "without_keys",
]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlphaEditHyperParams(MEMITHyperParams):
    """MEMIT's settings plus the null-space projection."""

    nullspace_energy: float = 0.2  # the null space: C's smallest eigen-directions holding this share of its trace
    alpha: float = 1e-2  # ridge term α of the solve
    previous_keys: bool = True  # constrain by the keys of earlier alphaedit edits in the journal (Kp)
    whiten: bool = True  # also weigh by MEMIT's λ C inside the null space (projected_solve; False: the paper's)
    # (prompt, subject) texts whose keys (every position) are taken out of the null space; those whose subject
    # is being edited are skipped (preserved_prompt_keys, without_keys)
    preserve_prompts: tuple[tuple[str, str], ...] = ()
    preserve_prompt_energy: float = 0.99  # share of the preserved prompts' key energy taken out of the null space

    def __post_init__(self) -> None:
        if not 0 < self.nullspace_energy < 1:
            raise InvalidEditError(f"alphaedit: nullspace_energy must be in (0, 1), got {self.nullspace_energy}")
        if not 0 < self.preserve_prompt_energy <= 1:
            raise InvalidEditError(
                f"alphaedit: preserve_prompt_energy must be in (0, 1], got {self.preserve_prompt_energy}"
            )
        check_prompt_pairs("alphaedit", self.preserve_prompts)
        if not self.alpha > 0:
            raise InvalidEditError(f"alphaedit: alpha must be > 0, got {self.alpha}")

    @classmethod
    def for_family(cls, family: ModelFamily) -> AlphaEditHyperParams:
        """MEMIT's layers and fit, preservation term included (module docstring)."""
        base = MEMITHyperParams.for_family(family)
        return cls(**{**dataclasses.asdict(base), "layers": base.layers})


def null_space_projector(cov: torch.Tensor, energy: float) -> tuple[torch.Tensor, int]:
    """``P = U Uᵀ`` over the eigenvectors of symmetric ``cov`` ``(in, in)`` of smallest eigenvalue whose
    eigenvalues sum to at most ``energy`` of the trace.

    Returns the projector (``cov``'s dtype) and the null space's dimension.
    """
    values, vectors = torch.linalg.eigh(cov)  # ascending
    share = torch.cumsum(values.clamp_min(0), 0) / values.clamp_min(0).sum().clamp_min(1e-30)
    keep = share <= energy
    basis = vectors[:, keep]  # (in, r)
    return basis @ basis.T, int(keep.sum())


@torch.no_grad()
def check_prompt_pairs(method: str, pairs: Sequence[Any]) -> None:
    """Raise :class:`InvalidEditError` unless every item of an editor's ``preserve_prompts`` is a
    ``(prompt, subject)`` pair of non-empty strings (checked when its settings are built, before any work)."""
    for item in pairs:
        if (
            not isinstance(item, (tuple, list))
            or len(item) != 2
            or not all(isinstance(t, str) and t.strip() for t in item)
        ):
            raise InvalidEditError(f"{method}: preserve_prompts holds (prompt, subject) pairs, got {item!r}")


def preserved_prompt_keys(model: LocalLanguageModel, path: str, prompts: Sequence[str]) -> torch.Tensor:
    """The input of the module at ``path`` at every token of every prompt: ``(in, total tokens)`` float64."""
    module = get_module(model.model, path)
    seen: list[torch.Tensor] = []

    def hook(_module: Any, args: tuple[Any, ...]) -> None:
        seen.append(args[0][0].detach().double())

    device = next(model.model.parameters()).device
    handle = module.register_forward_pre_hook(hook)
    try:
        for prompt in prompts:
            ids = model.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
            model.model(input_ids=ids.to(device))
    finally:
        handle.remove()
    return torch.cat(seen, dim=0).T


def without_keys(proj: torch.Tensor, keys: torch.Tensor, energy: float) -> tuple[torch.Tensor, int]:
    """``proj`` less the directions of ``P keys`` that hold ``energy`` of its energy (a projector again).

    ``keys`` is ``(in, m)``. The left singular vectors of ``P keys`` lie in ``P``'s range, so
    ``P - Q Qᵀ`` projects onto the part of the null space orthogonal to them. Returns it and ``Q``'s rank.
    """
    if keys.numel() == 0:
        return proj, 0
    inside = proj @ keys.to(proj)
    u, s, _ = torch.linalg.svd(inside, full_matrices=False)
    power = s.pow(2)
    if float(power.sum()) <= 0:
        return proj, 0
    share = torch.cumsum(power, 0) / power.sum()
    rank = min(int((share < energy).sum()) + 1, int((s > s[0] * 1e-8).sum()))
    q = u[:, :rank]
    return proj - q @ q.T, rank


def projected_solve(
    proj: torch.Tensor, keys: torch.Tensor, gram: torch.Tensor, alpha: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """AlphaEdit's right factor ``P (P (W + G) P + α I)⁻¹ P K`` ``(in, n)``.

    ``proj`` is the projector ``P`` ``(in, in)``, ``keys`` the new keys ``K`` ``(in, n)``, ``gram`` ``G`` the
    keys' Gram matrix (``K Kᵀ``, plus ``Kp Kpᵀ`` of earlier edits), ``weight`` ``W`` an optional ``(in, in)``
    weighting of the null space (MEMIT's ``λ C`` with ``whiten``; ``None``: the paper's plain solve). The
    result lies in ``P``'s range, so ``kᵀ · right = 0`` for every key ``k`` orthogonal to it.
    """
    inner = gram if weight is None else weight + gram
    eye = torch.eye(proj.shape[0], dtype=proj.dtype, device=proj.device)
    return proj @ torch.linalg.solve(proj @ inner @ proj + alpha * eye, proj @ keys)


class AlphaEditEditor(MEMITEditor):
    """MEMIT with the update projected onto the null space of the corpus's keys (module docstring).

    Sequential: each call is one delta computed on the model as it is, constrained by the keys of the earlier
    alphaedit edits still in the journal. Batched: one call with all requests.
    """

    name: ClassVar[str] = "alphaedit"
    hparams_class: ClassVar[type] = AlphaEditHyperParams
    replay_on_rollback: ClassVar[bool] = True  # later deltas are constrained by the earlier edits' keys (Kp)

    _requests: tuple[EditRequest, ...] = ()

    def _compute(self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: Any) -> WeightDelta:
        self._requests = requests  # read by _key_solve (the preserved prompts of the edited subjects are skipped)
        try:
            return super()._compute(model, requests, hparams)
        finally:
            self._requests = ()

    def _previous_keys(self, model: LocalLanguageModel, path: str, hparams: AlphaEditHyperParams) -> torch.Tensor:
        """Bare-prompt keys ``(in, m)`` of the requests of earlier alphaedit entries (``m`` may be 0)."""
        earlier = [r for e in journal_for(model.model).entries if e.method == self.name for r in e.requests]
        if not hparams.previous_keys or not earlier:
            return torch.zeros(0, 0, dtype=torch.float64)
        return subject_keys(model, path, earlier, ("{}",))[:, 0].double().T

    def _key_solve(
        self,
        model: LocalLanguageModel,
        layer: int,
        each: torch.Tensor,
        hparams: MEMITHyperParams,
        groups: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, str, EditGram | None]:
        """The projected solve, summed per request as MEMIT's: ``(B, in)``, the statistics' source and the
        solve's Gram matrix: ``P (λ C + Kp Kpᵀ) P + α I`` shared, ``P K`` as keys (``ΔW · G = L (P K)ᵀ``, since
        ``(P M P + α I)⁻¹`` maps ``P``'s range to itself)."""
        assert isinstance(hparams, AlphaEditHyperParams)  # hparams_class
        stats = self.key_moment(model, layer, hparams.mom2_n_texts)
        cov = stats.matrix.double()  # (in, in)
        proj, dim = null_space_projector(cov, hparams.nullspace_energy)
        keys = each.reshape(-1, each.shape[-1]).T  # (in, R * n_templates)
        gram = keys @ keys.T
        family = family_of(model.model)
        edited = {r.subject for r in self._requests}
        kept = [p for p, subject in hparams.preserve_prompts if subject not in edited]
        if kept:
            preserved = preserved_prompt_keys(model, family.path(family.mlp_out, layer), kept)
            proj, taken = without_keys(proj, preserved.to(proj.device), hparams.preserve_prompt_energy)
            dim -= taken
        prev = self._previous_keys(model, family.path(family.mlp_out, layer), hparams)
        prev_gram = torch.zeros_like(gram)
        if prev.numel():
            prev_gram = prev.to(gram) @ prev.to(gram).T
            gram = gram + prev_gram
        rank = each.shape[0] if groups is None else max(groups) + 1
        weight = hparams.mom2_update_weight * rank**hparams.mom2_batch_exponent * cov if hparams.whiten else None
        adj = projected_solve(proj, keys, gram, hparams.alpha, weight)  # (in, R * n_templates)
        logger.debug("alphaedit: layer %d null space of dimension %d, %d earlier keys", layer, dim, prev.shape[-1])
        right = adj.view(adj.shape[0], each.shape[0], -1).sum(dim=2).T  # (R, in)
        if groups is not None:
            index = torch.tensor(list(groups), device=right.device)
            right = torch.zeros(rank, right.shape[1], dtype=right.dtype, device=right.device).index_add(0, index, right)
        if not hparams.record_grams:
            return right, stats.source, None
        eye = torch.eye(proj.shape[0], dtype=proj.dtype, device=proj.device)
        outer = prev_gram if weight is None else weight + prev_gram
        shared = proj @ outer @ proj + hparams.alpha * eye
        edit_gram = EditGram(keys=(proj @ keys).cpu(), shared=shared.cpu(), layout=_layout(model, layer))
        return right, stats.source, edit_gram
