"""ROME (Meng et al., 2022, "Locating and Editing Factual Associations in GPT"): a rank-one MLP update.

One fact is written into the output projection ``W`` of the MLP at one layer (``family.mlp_out``):

1. key ``k*`` — the input of ``W`` at the subject's last token, averaged over the bare prompt, short random
   prefixes sampled from the model, and (``question_template``) the prompt in the model's question format;
2. value — a vector ``δ`` optimised so the model says ``target_new`` after each of those prompts, with ROME's
   KL term on ``"{subject} is a"`` and weight decay (:func:`~tools.edit._values.compute_values`, ROME's
   ``compute_v``); ``v* = W k + δ``;
3. ``ΔW = (v* - W k) (C⁻¹ k*)ᵀ / ((C⁻¹ k*)ᵀ k)`` with ``C = E[k kᵀ]`` over a text corpus (eq. 2 of the paper;
   as in the reference implementation ``k`` is the key of the bare prompt, so the edited layer maps it
   exactly to ``v*``, while the direction ``C⁻¹ k*`` comes from the averaged key).

One deviation (``exact_objective``, on by default): ``u = C⁻¹ k*`` does not depend on ``δ``, so the update's
effect on *every* position is known while ``δ`` is optimised (``δ · uᵀk_t / uᵀk``); optimising through it
instead of adding ``δ`` at the subject's token only makes the loss the edited model's own. On the GPT-2 world
model this raised reliability from 0.88 to 0.98 at equal locality.

Speed (issue 30): the value optimisation changes only the edited MLP's output, so the blocks below it and block
``L`` up to that output are run once per edit and each Adam step runs the blocks above ``L`` alone
(``v_skip_below``, :mod:`tools.edit._upper`), as lean modules sharing the model's parameters on the chunk's real
tokens, the last block's MLP only where the loss reads (``v_lean_upper``, :mod:`tools.edit._lean_upper`):
bit-identical edits, a test compares them with full forwards. The value is fitted by L-BFGS with steps capped at
Adam's longest (``v_optimizer``, default ``"lbfgs_capped"``, :mod:`tools.edit._value_lbfgs`): the same objective in
about half the evaluations, other edits (Adam is ``v_optimizer="adam"``; see :meth:`ROMEHyperParams.for_family`).

Preserved prompts (``preserve_prompts``, ``preserve_prompt_weight`` λ > 0; off by default, issue 22): the keys
``K_p`` of ``(prompt, subject)`` texts at every position join the covariance, ``u = (C + λ K_p K_pᵀ / n_p)⁻¹ k*``
(``n_p`` their number of positions, so λ weighs their mean second moment against the corpus's), so the update
responds less at those keys; prompts whose subject is the edited one are skipped. On concept edits the prompts are
the train-side definition prompts of the other concepts (:func:`eval.concepts.preserved_definition_prompts`): the
definition questions' shared words, where ROME's plain update responded (``eval/concepts/_bench.py``).
``preserve_prompt_focus`` γ > 0 (off by default) weighs each preserved key by ``min(|ûᵀ k_p|, 1)^γ`` (mean weight
1), ``û = C⁻¹ k* / (C⁻¹ k*)ᵀk`` the plain update's direction: the keys nearest the edited key in ``C⁻¹``'s metric,
where the plain update responds most, count most (``preserve_prompt_focus_share`` s mixes ``(1 - s) + s · w``). On
GPT-2's concept dev edits it loses generalization and locality, the more the more focused (README "Concept-level
editing", fifth session): off by default.

Preserved outputs (``preserve_output_weight`` μ > 0, off by default, issue 22; exact objective only): the value
fit also minimises ``μ · KL(unedited || edited)`` per position over ``preserve_output_texts`` of the kept preserved
prompts drawn each step (:func:`~tools.edit._preserve.preservation_of_texts`, MEMIT's corpus term on these texts):
the update is told to leave the other concepts' answers as they were, not only to respond less at their keys.

Subject-span key (``key_span="subject"``, off by default, issue 22; exact objective only): ``k*`` and ``k`` are the
keys averaged over all of the subject's tokens instead of its last one, and the direction gives 1 on the bare
prompt's mean key, so the update responds at every subject token. On GPT-2's block 0 the last token's key is
nearly the subword itself (``er`` of ``native French speaker``), so the plain update answers the same subword in
other concepts' prompts almost fully; the value fit (exact objective) then spreads the change over the subject's
tokens, and one of them alone elsewhere carries only part of it. On the concept test edits (capped fit, preserved
keys at λ = 1) it lifted greedy locality from 0.88 to 0.93 on GPT-2 and generalization from 0.68 to 0.77 on LLaMA
(README "Concept-level editing", seventh session); it stays off by default, chosen on concept edits only.

Spread layers (``extra_layers``, empty by default; exact objective only): one value ``δ`` is written by several
blocks, each ``ΔW_l = δ (C_l⁻¹ k*_l)ᵀ / ((C_l⁻¹ k*_l)ᵀ k_l) / n`` (MEMIT's even spreading over ``n`` blocks, each
with its own key direction and the preserved keys in its ``C_l``), so each update's norm is ``1/n`` of one
block's; the fit runs through all of them at once. ``layers`` keeps exactly one entry (the first block).

The update is returned as a :class:`~tools.edit.LowRank` of rank one per edited block. ROME edits one fact at a time
(``max_batch = 1``, as in the paper); sequential edits are separate deltas, each computed on the model as it
is then, always with the key statistics of the *unedited* model. Use MEMIT for batches.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from tools.edit._delta import WeightDelta, low_rank_for
from tools.edit._family import ModelFamily, family_of, get_module, linear_weight
from tools.edit._journal import journal_for
from tools.edit._keys import context_templates, subject_keys, subject_span_keys
from tools.edit._preserve import Preservation, preservation_of_texts
from tools.edit._protocol import BaseEditor
from tools.edit._request import EditRequest
from tools.edit._values import ValueOptions, compute_values
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["ROMEEditor", "ROMEHyperParams"]
logger = logging.getLogger(__name__)
_SAME_KEY_COS = 0.99  # preserve_prompt_focus: a preserved key this close to the edited key is the edited key
_PRESERVED_TOKENS = 64  # each preserved prompt cut to this many tokens for the output KL term
_ADAM_STOP = 0.01  # the Adam (and plain L-BFGS) fit's default stop (mean target NLL per token)
# the capped L-BFGS fit's default stop per family (others: 0.01); see ROMEHyperParams.for_family
_CAPPED_STOP: dict[str, float] = {"gpt2": 0.008}


@dataclass(frozen=True)
class ROMEHyperParams:
    """ROME's settings (names follow the reference implementation where they exist)."""

    layers: tuple[int, ...]  # exactly one layer whose mlp_out is edited (extra_layers: more blocks sharing it)
    v_num_grad_steps: int = 40  # Adam steps of the value optimisation
    v_lr: float = 1.0  # Adam learning rate of the value delta
    v_weight_decay: float = 0.1  # weight of ||delta|| / ||v_init||^2
    clamp_norm_factor: float = 50.0  # ||delta|| <= factor * ||v_init|| (the small models need ~10x)
    kl_factor: float = 0.0625  # weight of the KL term on "{subject} is a"
    v_stop_after_target: bool = True  # also fit the token that ends the old answer ("." after the object)
    # stop once the target's mean NLL per token is below this; None: the step rule's own (v_capped_stop_loss for
    # "lbfgs_capped", 0.01 for "adam" and "lbfgs": see early_stop_loss)
    v_early_stop_loss: float | None = None
    v_capped_stop_loss: float = 0.01  # the "lbfgs_capped" fit's stop when v_early_stop_loss is None (see for_family)
    exact_objective: bool = True  # optimise v* through the rank-one update itself (False: at the subject only)
    n_context_templates: int = 5  # random prefixes besides the bare prompt (keys and values average over them)
    context_template_length: int = 8  # tokens sampled per prefix
    template_seed: int = 0  # seed of the prefix sampler
    cache_context_templates: bool = True  # sample the prefixes once per model state (see ROMEEditor)
    question_template: bool = True  # also the prompt wrapped in the model's question format ("Q: {}\nA:")
    mom2_adjustment: bool = True  # weigh the key by C^-1 (False: plain k*, as ROME's ablation)
    mom2_n_texts: int = 100_000  # at most this many corpus texts for C
    mom2_ridge: float = 1e-3  # C + ridge * mean(diag C) * I before solving (keeps C^-1 stable on small corpora)
    v_skip_below: bool = True  # per Adam step run only the blocks above the edited MLP (bit-identical edits)
    v_fused_activation: bool = False  # GPT-2's gelu_new as torch's fused kernel while fitting (not bit-identical)
    v_lean_upper: bool = True  # the blocks above as lean modules on packed tokens (bit-identical edits)
    # the value fit's step rule: "adam", "lbfgs" or "lbfgs_capped" (the same objective; _value_lbfgs); None: the
    # default, "lbfgs_capped" ("adam" with preserve_output_weight > 0: only Adam fits that term). The default was
    # "adam" until issue 30's sixth session: the capped fit is 0.2-0.3x its time at equal or better scores (see
    # for_family for why its stop is stricter on GPT-2, and value_optimizer)
    v_optimizer: str | None = None
    # (prompt, subject) texts whose keys at every position join the key covariance (issue 22): C + lambda * K_p K_pᵀ
    preserve_prompts: tuple[tuple[str, str], ...] = ()
    preserve_prompt_weight: float = 0.0  # lambda, relative: K_p K_pᵀ is their mean second moment (0: off)
    # gamma: each preserved key weighted by min(plain update's response there, 1)^gamma, mean 1 (0: all equal)
    preserve_prompt_focus: float = 0.0
    preserve_prompt_focus_share: float = 1.0  # s: weights (1 - s) + s * focused (mean 1); 1 = focused alone
    # mu: weight of KL(unedited || edited) over every position of the preserved prompts in the value fit (0: off)
    preserve_output_weight: float = 0.0
    preserve_output_texts: int = 16  # preserved prompts drawn per Adam step for that KL term
    # blocks besides layers[0] that share the edit, MEMIT-style: the value is spread evenly over all of them
    extra_layers: tuple[int, ...] = ()
    # the key: "last" (the subject's last token, the paper's) or "subject" (averaged over all its tokens, issue 22)
    key_span: str = "last"

    def __post_init__(self) -> None:
        """Reject preserved-prompt settings that cannot be used (raised before any work)."""
        if not float(self.preserve_prompt_weight) >= 0.0:
            raise InvalidEditError(f"rome: preserve_prompt_weight must be >= 0, got {self.preserve_prompt_weight!r}")
        if not 0.0 <= float(self.preserve_prompt_focus_share) <= 1.0:
            raise InvalidEditError(
                f"rome: preserve_prompt_focus_share must be in [0, 1], got {self.preserve_prompt_focus_share}"
            )
        if not 0.0 <= float(self.preserve_prompt_focus) <= 64.0:
            raise InvalidEditError(f"rome: preserve_prompt_focus must be in [0, 64], got {self.preserve_prompt_focus}")
        if not float(self.preserve_output_weight) >= 0.0 or int(self.preserve_output_texts) < 1:
            raise InvalidEditError(
                "rome: preserve_output_weight must be >= 0 and preserve_output_texts >= 1, got "
                f"{self.preserve_output_weight!r} and {self.preserve_output_texts!r}"
            )
        if (self.preserve_output_weight > 0 or self.extra_layers) and not self.exact_objective:
            raise InvalidEditError("rome: preserve_output_weight and extra_layers act through the exact objective")
        if self.key_span not in ("last", "subject") or (self.key_span != "last" and not self.exact_objective):
            raise InvalidEditError(
                f"rome: key_span must be last or subject (subject with exact_objective), got {self.key_span!r}"
            )
        if len(set(self.extra_layers)) != len(self.extra_layers) or set(self.extra_layers) & set(self.layers):
            raise InvalidEditError(f"rome: extra_layers must be distinct and not in layers, got {self.extra_layers}")
        if self.v_optimizer not in (None, "adam", "lbfgs", "lbfgs_capped") or (
            self.value_optimizer() != "adam" and self.preserve_output_weight
        ):
            raise InvalidEditError(
                f"rome: v_optimizer must be adam, lbfgs or lbfgs_capped (these without preserve_output_weight), "
                f"got {self.v_optimizer!r}"
            )
        if not float(self.v_capped_stop_loss) >= 0.0 or (
            self.v_early_stop_loss is not None and not float(self.v_early_stop_loss) >= 0.0
        ):
            raise InvalidEditError(
                f"rome: v_early_stop_loss and v_capped_stop_loss must be >= 0, got {self.v_early_stop_loss!r} and "
                f"{self.v_capped_stop_loss!r}"
            )
        from tools.edit._alphaedit import check_prompt_pairs

        check_prompt_pairs("rome", self.preserve_prompts)

    @classmethod
    def for_family(cls, family: ModelFamily) -> ROMEHyperParams:
        """Defaults per family: an early block, a fifth of the depth (ROME edits GPT-J's block 5 of 28).

        Tuned on the 4-layer reference models (block 0 for both). On GPT-2, block 1 generalises better but keeps
        fewer neighbours (locality 0.87); on LLaMA block 1 is as good on average but misses edits whose target
        starts like another known name (``"Benoît Coquart"`` after ``"Benoît"`` -> ``"Potier"``). The value
        settings are stronger than the paper's (higher learning rate, lower weight decay, no effective clamp,
        lower early-stopping loss): these small models need value changes of several times the MLP output norm.

        Two prefixes instead of five and stopping at a mean target NLL of 0.02 instead of 0.01
        (``n_context_templates=2, v_early_stop_loss=0.02``) took 0.47x the median seconds per edit of the editor
        before issue 30 on 100 single GPT-2 world edits at equal or better reliability, generalization and
        locality, 0.42-0.44x with ``v_fused_activation`` as well (same scores), 0.33x and 0.38x with stop 0.03 too
        (equal or better scores) but 0.40x with lower reliability and greedy generalization on 100 other edits
        (``--seed 1``), and ``fast`` took 0.37x on LLaMA where greedy locality dropped from 0.986 to 0.983; none
        of six other LLaMA settings was <= 0.4x at equal or better scores (``bench/rome_speed.py``, README "ROME
        speed"). They are options,
        not the default: on LLaMA two prefixes let one of three sequential edits in the contract suite fail,
        and the fused activation changes the rounding of every edit. ``v_skip_below`` and ``v_lean_upper`` (on)
        give bit-identical edits: the Adam fit took 0.86x with the first, 0.59-0.64x with both (both models, two
        samples of edits).

        The value fit (issue 30, sixth session): the default step rule is ``"lbfgs_capped"`` (was ``"adam"``;
        ``v_optimizer="adam"`` alone gives the old fit, stop 0.01 included), stopping at a mean target NLL of
        0.008 on GPT-2 and 0.01 on the other families (``v_capped_stop_loss``). At Adam's stop (0.01) the capped
        fit was 0.22-0.28x of the editor before issue 30 on four runs of 100 edits (GPT-2 / LLaMA x ``--seed``
        0 / 1) at equal or better reliability and locality, but on GPT-2 seed 1 its generalization was lower
        (0.942 / 0.877 teacher-forced / greedy against 0.945 / 0.889): there it stops on the templated prompts
        with a change too small for some paraphrases (``"Isola Dovarese is in the country of"`` -> ``"Egypt"``:
        ``||δ||`` 45 against Adam's 122, 2 of 3 paraphrases). A stricter stop fixes that on GPT-2 (0.008:
        0.948 / 0.889; 0.005: 0.954 / 0.900) but on LLaMA it costs greedy locality (seed 0: 0.982 at 0.008,
        0.984 at 0.005, against 0.986; seed 1: 0.9657 at 0.005 against 0.9662), so the stricter stop is GPT-2's only.
        Figures of the new default: README "ROME speed", sixth session.
        """
        layers = (min(family.n_layers // 5, family.n_layers - 1),)
        return cls(layers=layers, v_capped_stop_loss=_CAPPED_STOP.get(family.name, _ADAM_STOP))

    def value_optimizer(self) -> str:
        """The value fit's step rule: ``v_optimizer``, or by default ``"lbfgs_capped"`` (``"adam"`` when
        ``preserve_output_weight`` > 0: the L-BFGS fits have no preservation term)."""
        if self.v_optimizer is not None:
            return self.v_optimizer
        return "adam" if self.preserve_output_weight > 0 else "lbfgs_capped"

    def early_stop_loss(self) -> float:
        """The value fit's stop: ``v_early_stop_loss``, or by default ``v_capped_stop_loss`` for ``"lbfgs_capped"``
        and 0.01 for ``"adam"`` and ``"lbfgs"`` (Adam's stop before issue 30's sixth session, so ``v_optimizer="adam"``
        alone is the old fit)."""
        if self.v_early_stop_loss is not None:
            return float(self.v_early_stop_loss)
        return float(self.v_capped_stop_loss) if self.value_optimizer() == "lbfgs_capped" else _ADAM_STOP

    def value_options(self) -> ValueOptions:
        """The value-optimisation part of these settings (the step rule and stop resolved)."""
        return ValueOptions(
            steps=self.v_num_grad_steps,
            lr=self.v_lr,
            weight_decay=self.v_weight_decay,
            clamp_norm_factor=self.clamp_norm_factor,
            kl_factor=self.kl_factor,
            early_stop_loss=self.early_stop_loss(),
            stop_after_target=self.v_stop_after_target,
            skip_below=self.v_skip_below,
            fused_activation=self.v_fused_activation,
            lean_upper=self.v_lean_upper,
            optimizer=self.value_optimizer(),
        )


class ROMEEditor(BaseEditor[ROMEHyperParams]):
    """Rank-one model editing of one fact (see the module docstring).

    Needs a statistics corpus (``corpus=``, or ``corpus_name=`` of statistics cached in ``cache_dir``)
    when ``mom2_adjustment`` is on.
    """

    name: ClassVar[str] = "rome"
    hparams_class: ClassVar[type] = ROMEHyperParams
    max_batch: ClassVar[int] = 1  # ROME edits one fact per update, as in the paper

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # model -> (settings and journal state, templates); weak so a dropped model takes its entry along
        self._templates: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], tuple[str, ...]]]
        self._templates = weakref.WeakKeyDictionary()
        # (layer, ridge) -> (C, LU factors of C + ridge): C is the unedited model's, the same for every edit
        self._factors: dict[tuple[int, float], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _context_templates(self, model: LocalLanguageModel, hparams: ROMEHyperParams) -> tuple[str, ...]:
        """The context templates of ``model`` as it is now, sampled once per model state.

        Sampling the prefixes costs ~8 forward passes, a tenth of an edit. The sampler is seeded, so the same
        weights give the same templates: they are kept per model and reused while its journal holds the same
        edits (the reference implementation samples them once per process). An edit applied or rolled back
        changes the journal and the templates are sampled again, so sequential edits still see the model as it
        is then. Weights changed outside the journal are not noticed: turn ``cache_context_templates`` off then.
        """
        settings = (hparams.n_context_templates, hparams.context_template_length, hparams.template_seed)
        if not hparams.cache_context_templates:
            return context_templates(model, *settings, question=hparams.question_template)
        key = (*settings, hparams.question_template, tuple(e.id for e in journal_for(model.model).entries))
        found = self._templates.get(model.model)
        if found is not None and found[0] == key:
            return found[1]
        templates = context_templates(model, *settings, question=hparams.question_template)
        self._templates[model.model] = (key, templates)
        return templates

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: ROMEHyperParams
    ) -> WeightDelta:
        start = time.perf_counter()
        if len(hparams.layers) != 1:
            raise InvalidEditError(f"rome edits exactly one layer, got layers={hparams.layers}")
        family = family_of(model.model)
        layer = hparams.layers[0]
        layers = (layer, *hparams.extra_layers)
        paths = [family.path(family.mlp_out, at) for at in layers]
        path = paths[0]
        req = requests[0]

        templates = self._context_templates(model, hparams)
        directions: dict[str, torch.Tensor] = {}  # path -> (1, in): gives 1 on the bare prompt's key
        stats_source = "none"
        for at, at_path in zip(layers, paths, strict=True):
            directions[at_path], stats_source = self._direction(model, at, at_path, req, templates, hparams)
        scale = 1.0 / len(layers)  # each layer writes an even share of the value (MEMIT's spreading)
        preserve = _output_preservation(model, req, hparams)
        values = compute_values(
            model,
            paths[-1],
            [req],
            templates,
            hparams.value_options(),
            directions={p: (d.float(), scale) for p, d in directions.items()} if hparams.exact_objective else None,
            preserve=preserve,
        )
        left = (values.target - values.init)[0].double().unsqueeze(1)  # (out, 1): v* - W k
        updates = {}
        for at_path, right in directions.items():  # right (1, in)
            module = get_module(model.model, at_path)
            weight = module.weight
            assert isinstance(weight, torch.Tensor)  # a linear layer
            share = left * scale if len(layers) > 1 else left
            updates[f"{at_path}.weight"] = low_rank_for(module, share.to(weight.dtype), right.to(weight.dtype))
        right = directions[path]
        seconds = time.perf_counter() - start
        logger.info("rome: %r -> %r at layers %s in %.2fs", req.prompt, req.target_new, layers, seconds)
        return WeightDelta(
            method=self.name,
            requests=requests,
            updates=updates,
            info={
                "layer": layer,
                "layers": list(layers),
                "nll": values.nll[0],
                "delta_norm": float(left.norm()),
                "update_norm": float(left.norm() * right.norm()),
                "stats": stats_source,
                "preserved_keys": len(_kept_prompts(req, hparams)) if hparams.preserve_prompt_weight > 0 else 0,
                "seconds": seconds,
            },
        )

    def _direction(
        self,
        model: LocalLanguageModel,
        layer: int,
        path: str,
        req: EditRequest,
        templates: tuple[str, ...],
        hparams: ROMEHyperParams,
    ) -> tuple[torch.Tensor, str]:
        """``(C⁻¹ k*) / ((C⁻¹ k*)ᵀ k)`` at ``path`` ``(1, in)`` (``C`` with the preserved keys), and the statistics'
        source. Raises :class:`InvalidEditError` when the bare key is orthogonal to the direction."""
        keys_of = subject_span_keys if hparams.key_span == "subject" else subject_keys
        k_star = keys_of(model, path, [req], templates)[0].mean(dim=0).double()  # (in,)
        k_bare = keys_of(model, path, [req], ("{}",))[0, 0].double()  # (in,)
        stats_source = "none"
        if hparams.mom2_adjustment:
            stats = self.key_moment(model, layer, hparams.mom2_n_texts)
            key = (layer, hparams.mom2_ridge)
            found = self._factors.get(key)
            if found is None or found[0] is not stats.matrix:  # C alone: the same for every edit at this layer
                zeros = torch.zeros(stats.matrix.shape, dtype=torch.float64)
                found = (stats.matrix, *_factor(stats.matrix, zeros, hparams.mom2_ridge))
                self._factors[key] = found
            lu, pivots = found[1], found[2]
            if hparams.preserve_prompt_weight > 0 and _kept_prompts(req, hparams):
                plain = None
                if hparams.preserve_prompt_focus > 0:  # the plain update's direction, 1 on the bare key
                    plain = torch.linalg.lu_solve(lu, pivots, k_star.unsqueeze(-1)).squeeze(-1)
                    plain = plain / torch.dot(plain, k_bare)
                moment = _preserved_moment(model, path, req, hparams, plain, k_bare)
                lu, pivots = _factor(stats.matrix, moment, hparams.mom2_ridge)
            u = torch.linalg.lu_solve(lu, pivots, k_star.unsqueeze(-1)).squeeze(-1)  # as linalg.solve, bit for bit
            stats_source = stats.source
        else:
            u = k_star
        denom = torch.dot(u, k_bare)
        if not bool(torch.isfinite(denom)) or float(denom.abs()) < 1e-12 * float(u.norm() * k_bare.norm()):
            raise InvalidEditError(f"rome: the key of {req.subject!r} is orthogonal to its update direction")
        return (u / denom).unsqueeze(0), stats_source


def _factor(matrix: torch.Tensor, preserved: torch.Tensor, ridge_factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The LU factors of ``C + preserved + ridge * mean(diag C) * I`` (float64): ``torch.linalg.solve`` factorises
    the same way, so solving with them gives its result exactly, and the factors of ``C`` alone are kept."""
    cov = matrix.double()  # (in, in)
    ridge = ridge_factor * cov.diagonal().mean()
    cov = cov + preserved.to(cov)
    lu, pivots = torch.linalg.lu_factor(cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device))
    return lu, pivots


def _kept_prompts(req: EditRequest, hparams: ROMEHyperParams) -> list[str]:
    """The preserved prompts less those about the edited subject (its own definition is meant to change)."""
    return [prompt for prompt, subject in hparams.preserve_prompts if subject != req.subject]


def _output_preservation(model: LocalLanguageModel, req: EditRequest, hparams: ROMEHyperParams) -> Preservation | None:
    """The KL term on the kept preserved prompts' next-token distributions (``None`` when off or none is kept).

    Every position of ``preserve_output_texts`` prompts drawn per step (seeded by ``template_seed``), weighted by
    ``preserve_output_weight``: the value fit itself is told to leave the other concepts' definitions as they were
    (issue 22), where the preserved keys only shrink the update's response there.
    """
    kept = _kept_prompts(req, hparams)
    if hparams.preserve_output_weight <= 0 or not kept:
        return None
    return preservation_of_texts(
        model.tokenizer,
        kept,
        weight=hparams.preserve_output_weight,
        per_step=hparams.preserve_output_texts,
        max_tokens=_PRESERVED_TOKENS,
        generator=torch.Generator().manual_seed(hparams.template_seed),
        device=next(model.model.parameters()).device,
    )


def _preserved_moment(
    model: LocalLanguageModel,
    path: str,
    req: EditRequest,
    hparams: ROMEHyperParams,
    plain: torch.Tensor | None = None,
    k_bare: torch.Tensor | None = None,
) -> torch.Tensor:
    """``lambda * K_p W K_pᵀ / n_p``: the preserved prompts' keys at every position, their mean second moment.

    Added to ``C`` before solving for ``u = C⁻¹ k*``, it makes the update respond less at those keys (the
    definition questions' shared words, issue 22): a zero matrix when off or no prompt is kept. ``W`` is the
    identity unless ``preserve_prompt_focus`` γ > 0: then each key ``k_i`` weighs ``min(|plainᵀ k_i|, 1)^γ`` divided
    by the mean of those weights (so λ keeps its scale), ``plain`` being the update's direction without the
    preserved keys (``C⁻¹ k*``, 1 on the edited key): the keys the plain update would answer most, those closest
    to the edited key in ``C⁻¹``'s metric, count most. A key that *is* the edited one (cosine >= 0.99 with the bare
    key: the edited subject's token inside another concept's prompt) weighs 0 then: keeping it would undo the edit.
    ``preserve_prompt_focus_share`` s < 1 mixes: each key weighs ``(1 - s) + s · w_i`` (mean 1 again), the uniform
    moment kept at ``1 - s`` of its weight.
    """
    from tools.edit._alphaedit import preserved_prompt_keys

    kept = _kept_prompts(req, hparams)
    d_in = int(linear_weight(get_module(model.model, path)).shape[1])
    if hparams.preserve_prompt_weight <= 0 or not kept:
        return torch.zeros(d_in, d_in, dtype=torch.float64)
    keys = preserved_prompt_keys(model, path, kept)  # (in, n_p) float64
    if hparams.preserve_prompt_focus > 0 and plain is not None:
        response = (plain.to(keys) @ keys).abs().clamp(max=1.0)  # (n_p,)
        weight = response.pow(hparams.preserve_prompt_focus)
        if k_bare is not None:
            same = torch.nn.functional.cosine_similarity(keys, k_bare.to(keys).unsqueeze(1), dim=0) >= _SAME_KEY_COS
            weight = torch.where(same, torch.zeros_like(weight), weight)
        if float(weight.sum()) > 0:
            share = hparams.preserve_prompt_focus_share
            keys = keys * ((1.0 - share) + share * weight / weight.mean()).sqrt().unsqueeze(0)
    return hparams.preserve_prompt_weight * (keys @ keys.T) / keys.shape[1]
