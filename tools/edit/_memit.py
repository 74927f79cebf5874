"""MEMIT (Meng et al., 2023, "Mass-Editing Memory in a Transformer"): many facts spread over several layers.

For a batch of ``B`` requests and critical layers ``L = (l_1 < ... < l_n)``:

1. target residual ``z_i`` at the output of block ``l_n`` (the last critical layer), per request: the hidden
   state at the subject's last token plus a vector optimised so the model says ``target_new``
   (:func:`~tools.edit._keys.compute_values`, MEMIT's ``compute_z``);
2. for each layer ``l`` in order: keys ``K`` ``(in, B)`` at the subject's last token (averaged over random
   prefixes) and the current residual ``h`` at block ``l_n``, both measured *with the updates of the earlier
   layers in place*; the residual still missing is spread evenly over the remaining layers,
   ``R = (z - h) / (n - i)`` ``(d, B)``, and ``ΔW_l = R Kᵀ (λ C_l + K Kᵀ)⁻¹`` with ``C_l = E[k kᵀ]`` of the
   layer's keys over a corpus and ``λ`` = ``mom2_update_weight``.

Earlier layers' updates are put in place with forward hooks on a temporary basis (``output += x ΔWᵀ``), never
written into the model: :meth:`MEMITEditor.compute` leaves the model untouched. Each ``ΔW_l`` is returned
factored as ``R @ (λ C + K Kᵀ)⁻¹ K`` — a :class:`~tools.edit.LowRank` of rank ``<= B``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from tools.edit._delta import LowRank, WeightDelta, low_rank_for
from tools.edit._family import ModelFamily, family_of, get_module
from tools.edit._keys import (
    ValueOptions,
    compute_values,
    context_templates,
    outputs_at_subject,
    subject_keys,
)
from tools.edit._protocol import BaseEditor
from tools.edit._request import EditRequest
from tools.edit._stats import second_moment
from tools.errors import EditBatchTooLargeError
from tools.lm import LocalLanguageModel

__all__ = ["MEMITEditor", "MEMITHyperParams", "available_memory", "estimate_memory"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MEMITHyperParams:
    """MEMIT's settings (names follow the reference implementation where they exist)."""

    layers: tuple[int, ...]  # critical layers, increasing; the target residual is taken after the last
    v_num_grad_steps: int = 25  # Adam steps of the target optimisation
    v_lr: float = 0.5  # Adam learning rate
    v_weight_decay: float = 0.5  # weight of ||delta|| / ||z_init||^2
    clamp_norm_factor: float = 0.75  # ||delta|| <= factor * ||z_init||
    kl_factor: float = 0.0625  # weight of the KL term on "{subject} is a"
    v_early_stop_loss: float = 5e-2  # a request stops once its target's mean NLL per token is below this
    mom2_update_weight: float = 15_000.0  # lambda: weight of the corpus keys against the batch's keys
    n_context_templates: int = 5  # random prefixes besides the bare prompt
    context_template_length: int = 8  # tokens sampled per prefix
    template_seed: int = 0  # seed of the prefix sampler
    question_template: bool = False  # also the prompt wrapped in the model's question format ("Q: {}\nA:")
    mom2_n_texts: int = 100_000  # at most this many corpus texts for C
    z_batch: int = 16  # requests whose targets are optimised together (bounds activation memory)
    max_memory_fraction: float = 0.5  # refuse a batch whose estimated memory exceeds this share of free memory

    @classmethod
    def for_family(cls, family: ModelFamily) -> MEMITHyperParams:
        """Defaults per family: the lower half of the blocks (MEMIT edits GPT-J's layers 3-8 of 28)."""
        last = max(0, family.n_layers // 2 - 1)
        layers = tuple(range(0, last + 1))
        if family.name == "llama":
            return cls(layers=layers)
        return cls(layers=layers)

    def value_options(self) -> ValueOptions:
        """The target-optimisation part of these settings."""
        return ValueOptions(
            steps=self.v_num_grad_steps,
            lr=self.v_lr,
            weight_decay=self.v_weight_decay,
            clamp_norm_factor=self.clamp_norm_factor,
            kl_factor=self.kl_factor,
            early_stop_loss=self.v_early_stop_loss,
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
    rows = min(n_requests, hp.z_batch) * (hp.n_context_templates + 2)
    per_token = 4 * (3 * vocab + family.n_layers * (12 * family.hidden + 3 * family.intermediate))
    activations = rows * seq_len * per_token
    batch = 8 * n_requests * (family.intermediate + 3 * family.hidden) * 2 + 8 * n_requests * n_requests
    solve = 8 * 3 * family.intermediate * family.intermediate
    return activations + batch + solve


def _templates(model: LocalLanguageModel, hparams: MEMITHyperParams) -> tuple[str, ...]:
    templates = context_templates(
        model, hparams.n_context_templates, hparams.context_template_length, hparams.template_seed
    )
    fmt = getattr(model, "prompt_format", None)
    if hparams.question_template and fmt is not None:
        templates = (*templates, fmt.question("{}"))
    return templates


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
        self._check_memory(model, requests, family, hparams, device)

        templates = _templates(model, hparams)
        z_path = family.path(family.block, layers[-1])
        inits, zs, nlls = self._target_residuals(model, requests, templates, z_path, hparams)
        updates, sources = self._spread(model, requests, templates, zs, z_path, hparams)
        seconds = time.perf_counter() - start
        logger.info("memit: %d request(s) over layers %s in %.2fs", len(requests), layers, seconds)
        init_norm = float(inits.norm(dim=1).mean())
        return WeightDelta(
            method=self.name,
            requests=requests,
            updates=updates,
            info={
                "layers": layers,
                "nll_mean": sum(nlls) / len(nlls),
                "z_init_norm": init_norm,
                "stats": tuple(sources),
                "seconds": seconds,
            },
        )

    def _target_residuals(
        self,
        model: LocalLanguageModel,
        requests: tuple[EditRequest, ...],
        templates: tuple[str, ...],
        z_path: str,
        hparams: MEMITHyperParams,
    ) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
        """Step 1: per request the residual at ``z_path`` before (``(B, d)``) and the optimised target ``z``."""
        inits, targets, nlls = [], [], []
        step = max(1, hparams.z_batch)
        for lo in range(0, len(requests), step):
            values = compute_values(model, z_path, requests[lo : lo + step], templates, hparams.value_options())
            inits.append(values.init)
            targets.append(values.target)
            nlls.extend(values.nll)
        return torch.cat(inits, dim=0), torch.cat(targets, dim=0).double(), nlls

    def _spread(
        self,
        model: LocalLanguageModel,
        requests: tuple[EditRequest, ...],
        templates: tuple[str, ...],
        zs: torch.Tensor,
        z_path: str,
        hparams: MEMITHyperParams,
    ) -> tuple[dict[str, LowRank], list[str]]:
        """Step 2: the update of each layer, with the earlier layers' updates in place (hooks, not weights)."""
        torch_model = model.model
        family = family_of(torch_model)
        layers = tuple(sorted(set(hparams.layers)))
        factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        updates: dict[str, LowRank] = {}
        sources = []
        for i, layer in enumerate(layers):
            path = family.path(family.mlp_out, layer)
            with _patched(torch_model, factors):
                each = subject_keys(model, path, requests, templates).double()  # (B, n_templates, in)
                current = outputs_at_subject(model, z_path, requests).double()  # (B, d)
            resid = ((zs - current) / (len(layers) - i)).T  # (d, B)
            mode = os.environ.get("KEYMODE", "mean")
            if mode == "mean":
                keys = each.mean(dim=1).T
            elif mode == "half":
                keys = (0.5 * each[:, 0] + 0.5 * each[:, 1:].mean(dim=1)).T
            else:
                keys = each.reshape(-1, each.shape[-1]).T  # (in, B * n_templates)
                resid = resid.repeat_interleave(each.shape[1], dim=1)
            stats = second_moment(
                model,
                layer,
                corpus=self.corpus,
                corpus_name=self.corpus_name,
                cache_dir=self.cache_dir,
                max_texts=hparams.mom2_n_texts,
            )
            sources.append(stats.source)
            cov = stats.matrix.double()  # (in, in)
            adj = torch.linalg.solve(hparams.mom2_update_weight * cov + keys @ keys.T, keys)  # (in, B)
            left, right = resid, adj.T  # ΔW (out, in) = left (out, B) @ right (B, in)
            factors[path] = (left.float(), right.float())
            module = get_module(torch_model, path)
            weight = getattr(module, "weight")
            updates[f"{path}.weight"] = low_rank_for(module, left.to(weight.dtype), right.to(weight.dtype))
            logger.info("memit: layer %d, mean residual norm %.3f", layer, float(resid.norm(dim=0).mean()))
        return updates, sources

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
        vocab = int(model.model.get_input_embeddings().num_embeddings)
        need = estimate_memory(len(requests), seq_len, vocab, family, hparams)
        free = available_memory(device)
        if need > hparams.max_memory_fraction * free:
            raise EditBatchTooLargeError(
                f"memit: a batch of {len(requests)} request(s) needs about {need / 2**30:.2f} GiB, more than "
                f"{hparams.max_memory_fraction:.0%} of the {free / 2**30:.2f} GiB free; split it or lower z_batch"
            )
