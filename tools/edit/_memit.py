"""MEMIT (Meng et al., 2023, "Mass-Editing Memory in a Transformer"): many facts spread over several layers.

The paper's procedure (``exact_objective=False``), for a batch of ``B`` requests and critical layers
``L = (l_1 < ... < l_n)``:

1. target residual ``z_i`` at the output of block ``l_n`` (the last critical layer), per request: the hidden
   state at the subject's last token plus a vector optimised so the model says ``target_new``
   (:func:`~tools.edit._values.compute_values`, MEMIT's ``compute_z``);
2. for each layer ``l`` in order: the keys at the subject's last token and the current residual ``h`` at block
   ``l_n``, both measured *with the updates of the earlier layers in place* (forward hooks, never the
   model's weights); the residual still missing is spread evenly over the remaining layers,
   ``R = (z - h) / (n - i)`` ``(d, B)``, and ``ΔW_l = R Kᵀ (λ C_l + K Kᵀ)⁻¹`` with ``C_l = E[k kᵀ]`` of the
   layer's keys over a corpus.

Keys: the reference implementation averages each request's keys over its context templates. Here every
templated key (the bare prompt, each random prefix, the question form) is its own column of ``K`` carrying its
request's residual: on the small reference models the key of a sentence-initial subject differs so much from
the prefixed ones that their mean fits neither (single edits reached 0.70 reliability instead of 0.95). The
update keeps rank ``<= B`` because a request's columns share its residual: ``ΔW = R (Σ_templates A k)ᵀ``.

The default (``exact_objective=True``) keeps the form of the update, ``ΔW_l = Rᵀ right_l / n`` with
``right_l = (λ C_l + K_l K_lᵀ)⁻¹ K_l`` from the unedited model's keys, but fits ``R`` ``(B, d)`` by optimising
the edited model itself: hooks apply all ``n`` updates of all ``B`` requests while the target loss is
minimised, so leaks between the batch's own edits and into the target's tokens are part of the objective. On
the reference models, edits whose target begins like another known name (LLaMA: ``"Benoît Coquart"`` after
``"Benoît"`` -> ``"Potier"``) only succeed this way, and a batch of 100 reaches 0.88 reliability instead of 0.4.

That fit also carries, by default, a preservation term: the KL divergence between the unedited and the
edited model's next-token distributions on corpus sentences that name no edited subject
(:mod:`tools.edit._preserve`; ``preserve_weight=0`` turns it off). A batch's updates respond to every key, and
on the small reference models the sum over 100 edits changed 42% of the corpus's next tokens; the term steers
the values to directions the rest of the text does not read (teacher-forced locality of a GPT-2 batch of 100:
0.43 without it, 0.855 with the defaults).

With the term, the fit keeps every value moving (and every request's rows in every step) until the last request
reaches the NLL stop (``v_joint_fit=True``, the default). With ``v_joint_fit=False`` each value stops on its own,
as the paper's ``compute_z`` stops each request at its own loss: a value whose requests are all below
``v_early_stop_loss`` is frozen and its rows leave the steps; all rows are evaluated every ``v_recheck_every``
steps, and a frozen value whose loss rose again (the other values' updates act on its prompts too) moves again
(:func:`~tools.edit._values.compute_values`). Measured on GPT-2 (issues 18/29; README, "Where a MEMIT /
AlphaEdit batch spends its time"): values slip back often (of 100, 78 reached the stop at some step, 48 were
below it at the end), the fit still ran all 250 steps and forwarded 23% fewer rows than the joint fit would in
250 steps, and ``edit-bench --T 100 --edit-mode batch`` scored lower (greedy 0.85 / 0.65 / 0.65 against
0.88 / 0.66 / 0.68): not the default.

``λ = mom2_update_weight · B ** mom2_batch_exponent``: the paper keeps ``λ`` constant; see
:meth:`MEMITHyperParams.for_family` for why it grows with the batch here.

The corpus's own statements of the edited facts are fitted with the requests (``corpus_phrasings`` per request
at most, :mod:`tools.edit._phrasings`; their number ``E`` is ``info["corpus_phrasings"]``). By default a
request and its phrasings share one value (``share_phrasing_values``, exact objective only): their keys are
columns of one request, so the result is one :class:`~tools.edit.LowRank` of rank ``<= B`` per layer (``left``
``(out, B)``, ``right`` ``(B, in)``); unshared, each phrasing is a request of its own and the rank is
``<= B + E``.
:meth:`MEMITEditor.compute` leaves the model untouched.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from tools.edit._delta import EditGram, LowRank, WeightDelta, low_rank_for
from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._keys import context_templates, outputs_at_subject, subject_keys
from tools.edit._phrasings import phrasings_per_request
from tools.edit._preserve import preservation_for
from tools.edit._protocol import BaseEditor
from tools.edit._request import EditRequest
from tools.edit._values import ValueOptions, compute_values, value_options_of
from tools.errors import EditBatchTooLargeError, InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["MEMITEditor", "MEMITHyperParams", "available_memory", "estimate_memory"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MEMITHyperParams:
    """MEMIT's settings (names follow the reference implementation where they exist)."""

    layers: tuple[int, ...]  # critical layers, increasing; the target residual is taken after the last
    v_num_grad_steps: int = 250  # Adam steps of the target optimisation (the preservation term slows it)
    v_lr: float = 1.0  # Adam learning rate
    v_weight_decay: float = 0.1  # weight of ||delta|| / ||z_init||^2
    clamp_norm_factor: float = 4.0  # ||delta|| <= factor * ||z_init||
    kl_factor: float = 0.0625  # weight of the KL term on "{subject} is a"
    v_stop_after_target: bool = True  # also fit the token that ends the old answer ("." after the object)
    v_early_stop_loss: float = 0.05  # the fit ends once every target's mean NLL per token is below this
    mom2_update_weight: float = 1_000.0  # lambda for one request: weight of the corpus keys against the batch's
    mom2_batch_exponent: float = 0.5  # lambda grows as B ** exponent (0: the paper's constant lambda)
    n_context_templates: int = 5  # random prefixes besides the bare prompt
    context_template_length: int = 8  # tokens sampled per prefix
    template_seed: int = 0  # seed of the prefix sampler
    question_template: bool = True  # also the prompt wrapped in the model's question format ("Q: {}\nA:")
    exact_objective: bool = True  # fit the updates' left factor through the updates (False: the paper's z + spread)
    mom2_n_texts: int = 100_000  # at most this many corpus texts for C
    z_batch: int = 16  # requests per forward pass of the target optimisation (bounds activation memory)
    max_memory_fraction: float = 0.5  # refuse a batch whose estimated memory exceeds this share of free memory
    corpus_phrasings: int = 2  # per request, corpus sentences stating the old fact fitted too (_phrasings)
    share_phrasing_values: bool = True  # a request and its phrasings share one value (rank B; exact objective)
    preserve_weight: float = 1.0  # KL on unrelated corpus sentences in the exact objective (0: off; _preserve)
    preserve_texts: int = 32  # corpus sentences drawn per optimisation step
    preserve_pool: int = 4096  # at most this many corpus texts to draw from (those naming no edited subject)
    preserve_max_tokens: int = 64  # each cut to this many tokens
    v_skip_below: bool = True  # run the blocks up to the lowest edited MLP once per fit, not per step (bit-identical)
    v_joint_fit: bool = True  # every value moves until all have stopped (False: each stops on its own, compute_z)
    v_recheck_every: int = 10  # steps between evaluations of the values already stopped (per-value stop)
    record_grams: bool = False  # keep each solve's Gram matrix in info["grams"] (RegMean; `variants` sets it)

    @classmethod
    def for_family(cls, family: ModelFamily) -> MEMITHyperParams:
        """Defaults per family: the lower half of the blocks (MEMIT edits GPT-J's layers 3-8 of 28).

        Tuned on the 4-layer reference models (layers 0-1) with the world's documents as corpus. Edits there need
        residual changes of about twice the residual's norm, so every edit leaks into keys that resemble its subject's
        (other names' tokens), and a batch's leaks add up: even ten sequential single ROME edits keep only half of the
        neighbours' answers. Without the corpus terms below, no choice of ``λ`` or layers keeps a batch of 100 both
        reliable and local (GPT-2, reliability / locality): the exact objective gives 0.88 / 0.09 for any ``λ`` from 10
        to 1e5; the paper's procedure gives 0.39 / 0.14 at ``λ`` = 1e3, 0.38 / 0.55 at 1e4 and 0.07 / 0.87 at 3e4. The
        defaults favour reliability and small batches (one edit: 0.95 / 0.95); ``λ`` grows with the square root of the
        batch (the summed leak of ``B`` unrelated edits grows about so). Without the two corpus terms below, a batch of
        100 scores 0.98 / 0.18 on GPT-2 and 1.0 / 0.36 on LLaMA (greedy generation); spreading it over all four layers
        changes nothing (GPT-2: 1.0 / 0.18). The leak is in the keys: at the subject's last token of the neighbours
        (other subjects, same relation) the solve's right factors of the 100 edits respond with a largest single
        coefficient of 0.2-0.37 (median over neighbours, layers 0-3; 1 on the edit's own key), mostly where a
        neighbour's sub-word token equals an edited subject's last one. The damage is shared between the neighbours'
        subject tokens and the rest of their prompts: applying the batch's updates only at the subject's tokens keeps
        0.68 of the answer tokens (teacher-forced), only at the other positions (relation words, answer) 0.69,
        everywhere 0.43. Adding the edit prompts' own other positions to the solve (weight 1 or 30 per key, as
        irrelevant inputs) lowered it to 0.40 and 0.34: the fitted left factor grows to keep the edits reliable. Layers
        1-2 instead of 0-1 give 0.31.

        Why no ``λ`` helps, and what does (:mod:`tools.edit._preserve`): exact values over ``B`` keys move
        every corpus position by about ``|v| sqrt(B / kᵀC⁻¹k)``, and the argmax of 42% of the corpus's next
        tokens changed. The preservation term (KL on 32 corpus sentences per step) steers the values'
        directions instead. Teacher-forced on all 476 neighbour prompts of the GPT-2 batch of 100 (reliability
        / locality, and generalization over all paraphrases): without it 1.0 / 0.43, 0.646; with weight 1,
        fit to a mean NLL of 0.5 (150 steps) 0.985 / 0.843, 0.550; weight 2, 0.2 (300 steps) 0.958 / 0.867,
        0.535; weight 3, 0.5 (200 steps) 0.900 / 0.861, 0.495; weight 3, 0.1 (300 steps) 0.937 / 0.875, 0.519;
        layers 0-2 at weight 1, 0.5: 0.983 / 0.831, 0.549. Without the term, a fit to 0.5 (weight decay 0.5)
        gives 0.843 / 0.615: smaller values alone help less. The term costs generalization, since a paraphrase
        reads the subject the way the rest of the text does. Drawing the sentences from a corpus without the
        neighbours' subjects (weight 3, 250 steps, left-padded prototype) gave 0.975 / 0.646 against 0.943 /
        0.696 with them. The fit ends at a mean NLL of 0.05, not 0.5 or 0.1: there, edits whose target begins
        like a known name (``"Benoît Coquart"`` after ``"Benoît"`` -> ``"Potier"``) stop short, in a batch of
        five at 0.5 and in three sequential single edits on LLaMA at 0.1.

        What the term takes from generalization, the corpus's own statements of the edited facts give back
        (``corpus_phrasings``, :mod:`tools.edit._phrasings`): fitted with the requests, ``"The CEO of Alibaba
        is"`` beside ``"Alibaba's CEO is"``. ``edit-bench --method memit --T 100`` on LLaMA at weight 1 and
        NLL 0.1, teacher-forced (greedy): 0.998 / 0.712 / 0.930 (0.99 / 0.424 / 0.854) without them, 0.998 /
        0.849 / 0.893 (0.99 / 0.68 / 0.819) with up to two per request, each fitted as a request of its own.
        Such phrasings add ``E`` to the update's rank and, by the bound above, to every position's move: on
        GPT-2 (weight 1, NLL 0.05, 250 steps) 0.959 / 0.755 / 0.792 (0.85 / 0.564 / 0.568). Sharing the
        request's value (``share_phrasing_values``, the default: their keys become the request's columns, rank
        ``B``) gives 0.970 / 0.828 / 0.855 (0.88 / 0.656 / 0.68). More preservation instead costs the edits:
        unshared at weight 2, 0.891 / 0.714 / 0.825; at weight 3 and 300 steps, 0.857 / 0.640 / 0.798.
        """
        last = max(0, family.n_layers // 2 - 1)
        return cls(layers=tuple(range(0, last + 1)))

    def value_options(self) -> ValueOptions:
        """The target-optimisation part of these settings."""
        return replace(
            value_options_of(self),
            skip_below=self.v_skip_below,
            joint=self.v_joint_fit,
            recheck_every=self.v_recheck_every,
        )


def available_memory(device: torch.device) -> int:
    """Free bytes for tensors on ``device``: CUDA's free memory, else the host's ``MemAvailable``."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no way to tell: do not refuse
        return 1 << 62


def estimate_memory(n_requests: int, seq_len: int, vocab: int, family: ModelFamily, hp: MEMITHyperParams) -> int:
    """Rough peak bytes of a MEMIT batch: one optimisation chunk's activations plus keys and solves.

    The chunk runs ``z_batch * (templates + 2)`` sequences forward and backward (logits and their gradient
    dominate); keys, residuals and targets grow with the batch; each layer solves an ``(in, in)`` system.
    """
    rows = min(n_requests, hp.z_batch) * (hp.n_context_templates + 3)  # + bare, question, KL prompts
    per_token = 4 * (3 * vocab + family.n_layers * (12 * family.hidden + 3 * family.intermediate))
    activations = max(rows * seq_len, hp.preserve_texts * hp.preserve_max_tokens) * per_token
    batch = 8 * n_requests * (family.intermediate + 3 * family.hidden) * 2 + 8 * n_requests * n_requests
    solve = 8 * 3 * family.intermediate * family.intermediate
    return activations + batch + solve


@contextmanager
def _patched(model: nn.Module, updates: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
    """Forward hooks adding ``x @ rightᵀ @ leftᵀ`` to each module's output (a temporary ``ΔW = left @ right``)."""
    handles = []

    def make_hook(left: torch.Tensor, right: torch.Tensor) -> Any:
        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
            x = inputs[0]  # (B, T, in)
            return output + (x @ right.T.to(x.dtype)) @ left.T.to(x.dtype)  # (B, T, out)

        return hook

    try:
        for path, (left, right) in updates.items():
            handles.append(get_module(model, path).register_forward_hook(make_hook(left, right)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _layout(model: LocalLanguageModel, layer: int) -> str:
    """How layer ``layer``'s MLP output projection stores its ``(out, in)`` map (:class:`EditGram`)."""
    family = family_of(model.model)
    return "out_in" if isinstance(get_module(model.model, family.path(family.mlp_out, layer)), nn.Linear) else "in_out"


class MEMITEditor(BaseEditor[MEMITHyperParams]):
    """Batch editing over several MLP layers (see the module docstring).

    Needs a statistics corpus (``corpus=``, or ``corpus_name=`` of statistics cached in ``cache_dir``).
    Sequential batches are separate deltas; each is computed on the model as it is then, with the key
    statistics of the unedited model.
    """

    name: ClassVar[str] = "memit"
    hparams_class: ClassVar[type] = MEMITHyperParams
    max_batch: ClassVar[int] = 10_000

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: MEMITHyperParams
    ) -> WeightDelta:
        start = time.perf_counter()
        torch_model = model.model
        family = family_of(torch_model)
        layers = tuple(sorted(set(hparams.layers)))
        device = next(torch_model.parameters()).device
        found = phrasings_per_request(self.corpus, requests, hparams.corpus_phrasings)
        extra = tuple(x for per in found for x in per)
        fit = requests + extra  # the requests, then the corpus's own statements of their facts
        owners = tuple(range(len(requests))) + tuple(i for i, per in enumerate(found) for _ in per)
        groups = owners if hparams.share_phrasing_values and extra else None
        self._check_memory(model, fit, family, hparams, device)

        templates = context_templates(
            model,
            hparams.n_context_templates,
            hparams.context_template_length,
            hparams.template_seed,
            question=hparams.question_template,
        )
        z_path = family.path(family.block, layers[-1])
        if hparams.exact_objective:
            inits, updates, nlls, sources, report, grams = self._fit_through_updates(
                model, fit, templates, z_path, hparams, groups
            )
        else:
            report = {}
            inits, zs, nlls = self._target_residuals(model, fit, templates, z_path, hparams)
            updates, sources, grams = self._spread(model, fit, templates, zs, z_path, hparams)
        nlls = nlls[: len(requests)]
        seconds = time.perf_counter() - start
        logger.info("memit: %d request(s) over layers %s in %.2fs", len(requests), layers, seconds)
        init_norm = float(inits[: len(requests)].norm(dim=1).mean())
        return WeightDelta(
            method=self.name,
            requests=requests,
            updates=updates,
            info={
                "layers": layers,
                "nll_mean": sum(nlls) / len(nlls),
                "z_init_norm": init_norm,
                "stats": tuple(sources),
                "corpus_phrasings": len(extra),
                "grams": grams,  # per updated weight, the solve's Gram matrix (RegMean merging, tools.merge)
                "seconds": seconds,
                **report,  # the value fit's steps, each value's stop step and the rows it forwarded
            },
        )

    def _key_solve(
        self,
        model: LocalLanguageModel,
        layer: int,
        each: torch.Tensor,
        hparams: MEMITHyperParams,
        groups: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, str, EditGram | None]:
        """``(λ C + K Kᵀ)⁻¹ K`` summed over each request's templated keys: ``(B, in)``, the stats' source, and
        the solve's Gram matrix (``λ C + K Kᵀ``, for RegMean merging; ``None`` unless ``record_grams``).

        ``each`` is ``(R, n_templates, in)``; every templated key is one column of ``K``. With ``groups`` (a
        value index per request, ``0..B-1``) the columns of a group's requests are summed too: ``B`` rows.
        """
        stats = self.key_moment(model, layer, hparams.mom2_n_texts)
        cov = stats.matrix.double()  # (in, in)
        keys = each.reshape(-1, each.shape[-1]).T  # (in, R * n_templates)
        rank = each.shape[0] if groups is None else max(groups) + 1
        lam = hparams.mom2_update_weight * rank**hparams.mom2_batch_exponent
        adj = torch.linalg.solve(lam * cov + keys @ keys.T, keys)  # (in, R * n_templates)
        # a request's columns share its residual: sum them, so ΔW = left @ right has rank <= B
        right = adj.view(adj.shape[0], each.shape[0], -1).sum(dim=2).T  # (R, in)
        if groups is not None:
            index = torch.tensor(list(groups), device=right.device)
            right = torch.zeros(rank, right.shape[1], dtype=right.dtype, device=right.device).index_add(0, index, right)
        if not hparams.record_grams:
            return right, stats.source, None
        gram = EditGram(keys=keys.detach().cpu(), shared=(lam * cov).cpu(), layout=_layout(model, layer))
        return right, stats.source, gram

    def _fit_through_updates(
        self,
        model: LocalLanguageModel,
        requests: tuple[EditRequest, ...],
        templates: tuple[str, ...],
        z_path: str,
        hparams: MEMITHyperParams,
        groups: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, dict[str, LowRank], list[float], list[str], dict[str, Any], dict[str, EditGram]]:
        """``exact_objective``: fix each layer's right factor from the unedited keys, fit the shared left one.

        ``right_l`` ``(B, in)`` is the MEMIT solve at layer ``l`` with the unedited model's keys, scaled so that
        ``right_l[i] · k_i = 1`` on request ``i``'s bare prompt; ``ΔW_l = deltaᵀ right_l / n`` and ``delta``
        ``(B, d)`` is optimised through all ``n`` updates at once (each ``delta_i`` is then about request
        ``i``'s total residual change at its subject, spread evenly over the layers, as in MEMIT).
        """
        torch_model = model.model
        family = family_of(torch_model)
        layers = tuple(sorted(set(hparams.layers)))
        rights: dict[str, torch.Tensor] = {}
        sources: list[str] = []
        grams: dict[str, EditGram] = {}
        for layer in layers:
            path = family.path(family.mlp_out, layer)
            each = subject_keys(model, path, requests, templates).double()  # (B, n_templates, in)
            right, source, gram = self._key_solve(model, layer, each, hparams, groups)
            if gram is not None:
                grams[f"{path}.weight"] = gram
            bare = (right * each[: right.shape[0], 0]).sum(dim=1, keepdim=True)  # (B, 1): on the bare prompt's key
            if not bool(torch.isfinite(bare).all()) or bool((bare.abs() < 1e-12).any()):
                raise InvalidEditError(f"memit: a subject's key at layer {layer} is orthogonal to its update")
            rights[path] = right / bare
            sources.append(source)
        scale = 1.0 / len(layers)
        preserve = preservation_for(
            model.tokenizer,
            self.corpus,
            requests,
            weight=hparams.preserve_weight,
            per_step=hparams.preserve_texts,
            pool=hparams.preserve_pool,
            max_tokens=hparams.preserve_max_tokens,
            seed=hparams.template_seed,
            device=next(torch_model.parameters()).device,
        )
        values = compute_values(
            model,
            z_path,
            requests,
            templates,
            hparams.value_options(),
            directions={path: (right.float(), scale) for path, right in rights.items()},
            chunk_size=hparams.z_batch,
            preserve=preserve,
            groups=groups,
        )
        delta = (values.target - values.init).double()  # (B, d)
        updates: dict[str, LowRank] = {}
        for path, right in rights.items():
            module = get_module(torch_model, path)
            weight = module.weight
            assert isinstance(weight, torch.Tensor)  # a linear layer
            left = scale * delta.T  # (out, B)
            updates[f"{path}.weight"] = low_rank_for(module, left.to(weight.dtype), right.to(weight.dtype))
        fit = {
            "value_steps": values.steps,
            "stop_steps": values.stop_steps,
            "settled_steps": values.settled_steps,
            "rows_run": values.rows_run,
        }
        return values.init, updates, list(values.nll), sources, fit, grams

    def _target_residuals(
        self,
        model: LocalLanguageModel,
        requests: tuple[EditRequest, ...],
        templates: tuple[str, ...],
        z_path: str,
        hparams: MEMITHyperParams,
    ) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
        """Step 1: per request the residual at ``z_path`` before (``(B, d)``) and the optimised target ``z``."""
        values = compute_values(model, z_path, requests, templates, hparams.value_options(), chunk_size=hparams.z_batch)
        return values.init, values.target.double(), list(values.nll)

    def _spread(
        self,
        model: LocalLanguageModel,
        requests: tuple[EditRequest, ...],
        templates: tuple[str, ...],
        zs: torch.Tensor,
        z_path: str,
        hparams: MEMITHyperParams,
    ) -> tuple[dict[str, LowRank], list[str], dict[str, EditGram]]:
        """Step 2: the update of each layer, with the earlier layers' updates in place (hooks, not weights)."""
        torch_model = model.model
        family = family_of(torch_model)
        layers = tuple(sorted(set(hparams.layers)))
        factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        updates: dict[str, LowRank] = {}
        sources: list[str] = []
        grams: dict[str, EditGram] = {}
        for i, layer in enumerate(layers):
            path = family.path(family.mlp_out, layer)
            with _patched(torch_model, factors):
                each = subject_keys(model, path, requests, templates).double()  # (B, n_templates, in)
                current = outputs_at_subject(model, z_path, requests).double()  # (B, d)
            resid = ((zs - current) / (len(layers) - i)).T  # (d, B)
            right, source, gram = self._key_solve(model, layer, each, hparams)  # (B, in)
            if gram is not None:
                grams[f"{path}.weight"] = gram
            sources.append(source)
            left = resid  # (out, B)
            factors[path] = (left.float(), right.float())
            module = get_module(torch_model, path)
            weight = module.weight
            assert isinstance(weight, torch.Tensor)  # a linear layer
            updates[f"{path}.weight"] = low_rank_for(module, left.to(weight.dtype), right.to(weight.dtype))
            logger.debug("memit: layer %d, mean residual norm %.3f", layer, float(resid.norm(dim=0).mean()))
        return updates, sources, grams

    def _check_memory(
        self,
        model: LocalLanguageModel,
        requests: Sequence[EditRequest],
        family: ModelFamily,
        hparams: MEMITHyperParams,
        device: torch.device,
    ) -> None:
        tok = model.tokenizer
        longest = max(len(tok(r.prompt + " " + r.target_new, add_special_tokens=False)["input_ids"]) for r in requests)
        seq_len = longest + 2 * hparams.context_template_length + 2
        torch_model: Any = model.model
        vocab = int(torch_model.get_input_embeddings().num_embeddings)
        need = estimate_memory(len(requests), seq_len, vocab, family, hparams)
        free = available_memory(device)
        if need > hparams.max_memory_fraction * free:
            raise EditBatchTooLargeError(
                f"memit: a batch of {len(requests)} request(s) needs about {need / 2**30:.2f} GiB, more than "
                f"{hparams.max_memory_fraction:.0%} of the {free / 2**30:.2f} GiB free; split it or lower z_batch"
            )
