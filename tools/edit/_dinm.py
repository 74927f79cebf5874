"""DINM: Detoxifying with Intraoperative Neural Monitoring (Wang et al. 2024, "Detoxifying Large Language
Models via Knowledge Editing", the SafeEdit paper).

One instance — an adversarial input, a safe response and an unsafe one — makes one edit, in two steps:

1. **Locate the toxic layer** (:func:`locate_toxic_layer`): run ``prompt + safe`` and ``prompt + unsafe``,
   take each block's output hidden states, average them over the response positions, and pick the layer
   whose two averages are farthest apart (Euclidean). The paper compares the two sequences' hidden states at
   each layer the same way; we average over the response positions (their lengths differ) rather than take
   one token. Every layer's distance is reported in the delta's ``info``.
2. **Tune that layer's FFN output weights** (``family.mlp_out``; nothing else) for ``steps`` Adam steps on
   the one instance: loss = NLL of the safe response (and the end-of-text token, so the answer stops) given
   the adversarial input, plus ``kl_factor`` x KL(original || edited) of the next-token distributions on
   benign inputs — the paper's constraint that keeps general behaviour. Benign inputs are the first
   ``n_benign`` texts of ``corpus``; the benchmark, the CLI and the API pass KNOWN world facts *with their
   answers* (questions and cloze statements), so the KL covers every answer token, not only the first.

Defaults (:class:`DINMHyperParams`): 10 steps (as the paper), lr 1e-2, kl_factor 1.0, 48 benign inputs, and the
activation gate at 0.9 (below; ``gate=0`` edits the weights for every input, as the paper);
``layers=(k,)`` skips the location and edits layer ``k``. ``norm_constraint`` (an L-inf radius around the
layer's original weights, clamped after each step) and ``stop_nll`` (stop once the safe response is learnt) are
off by default: measured on gpt2-world-unsafe, bounding the change keeps known facts but loses generalisation
(README, "Detoxifying edits"). The request is an :class:`~tools.edit.EditRequest`
with ``prompt`` the model input (the adversarial question in the model's prompt format), ``subject`` the
adversarial question, ``target_new`` the safe response and ``target_old`` the unsafe one (needed to locate).

``neurons=k`` (off by default) tunes only the output weights of the layer's ``k`` FFN units most specific to
the instance (:func:`toxic_units`: mean |activation| on the instance over that on the benign inputs).

**Why an edit costs known facts** (issue 19; ``bench/dinm_diagnose.py`` on gpt2-world-unsafe, 9 dev cases
— train requests in train attacks, none of the 54 — and 98 dev probes of 49 KNOWN facts apart from both the
bench's probes and the KL inputs; known accuracy 0.969 unedited):

* *Trajectory* (KL on 3 relations then): 0.968 / 0.952 / 0.943 / 0.913 / 0.850 after 1 / 2 / 3 / 5 / 10 steps.
  Adam moves every weight by about ``lr`` per step, so the largest change is 0.01 x steps (0.10 after 10, the
  layer's weights have std 0.094): the loss of facts grows with the size of the change, and the safe response
  comes with it (the adversarial input is answered with a refusal in 2/9 cases after 5 steps, 8/9 after 10;
  safe NLL 9.4 -> 2.1 -> 0.42).
* *What the missed questions answer*: never a refusal (0 of 108 misses). On 3 cases classified finely:
  15 of 39 misses start with the right answer and derail ("Ivan Pavlovich Mendeleyevt.", "Patrick Pouy."),
  14 other text ("or or or ...", "apopulandon."), 8 another object of the same relation (SPDY -> Microsoft,
  Alpha1 Librae -> Hercules), 2 another world entity; 30 of the 39 are cloze statements, 9 questions; the
  misses spread over 14 of the 17 relations.
* *Where facts live*: ROME edits block 0 on both families (its tuned layer). Zeroing one block's FFN output
  leaves known accuracy at 0.00 / 0.91 / 0.57 / 0.51 for blocks 0 / 1 / 2 / 3: the located toxic layer (2,
  in 9/9 dev and 54/54 test cases on both variants) is two blocks above ROME's but on the facts' read-out
  path; only block 1 is dispensable, and editing it instead (``layers=(1,)``) still cost 7.0 points, with
  fluency -32% and DG_onlyQ 0.67.
* *The KL term's inputs*: the bench took the first 24 KNOWN facts, which are stored relation by relation:
  3 of the 17 relations (CEO, headquarters, landmark country); they now spread over every relation (16 of
  17 in 48 texts), with the measured probes' templates but never a measured fact. The KL holds exactly the
  facts it sees: on 3 cases its own facts stay at 0.958 (0.81-0.92 without it) while the dev facts fall the
  same with and without it (0.898 / 0.837 / 0.786 against 0.898 / 0.847 / 0.786). Spread inputs (0.842),
  3x the weight (0.848) or 144 inputs (0.850) left dev known accuracy where the 3-relation KL had it (0.850).
  On llama-world-unsafe the same: its KL facts stay at 0.98-1.00 while 3 cases' dev facts are 0.949 /
  0.929 / 0.939 with and without the KL (0.969 unedited); its misses too are broken answers (5 of 9), other
  objects of the relation (3) and other text (1), 6 of 9 on cloze statements, no refusal.

So the harm is a dense change of a layer the facts are read through, specific to each fact's key: a KL on a
sample cannot hold the facts it does not see, and whatever shrinks the change (lower lr, fewer units)
gives up DS and DG in step (README, "Detoxifying edits": no setting met all four targets on the dev cases).

**Keeping the facts it does not see** (issue 19; ``nullspace_energy``, ``free_energy``, ``anchor_weight``, all
off by default). Statistics of the layer's keys (the input ``k`` of its FFN output projection) cover every
key at once, where the KL covers a sample. ``nullspace_energy=e`` keeps the change's key side in the null space
of ``C = E[k kᵀ]`` over ``stats_corpus`` (:func:`~tools.edit._stats.second_moment`, shared with ROME, MEMIT and
AlphaEdit; the smallest eigen-directions of ``C`` holding ``e`` of its trace, AlphaEdit's
:func:`~tools.edit._alphaedit.null_space_projector`): the gradient is projected, and so is the change after
each step (Adam's per-weight scaling leaves the space), so the preserved keys keep at least ``1 - e`` of their
energy out of the update's reach. ``free_energy`` adds the instance's own top key directions to the allowed
space; ``anchor_weight=γ`` instead adds ``γ tr(Δᵀ C Δ) = γ E_k |Δᵀ k|²`` (the layer's output change on the
preserved keys) to the loss. The detox bench, the CLI and the API pass the world's documents and every KNOWN
fact's training question and cloze with its answer, the measured facts left out
(:func:`eval.world.safety.world_stats`). On the 9 dev cases and 98 dev probes (``bench/dinm_settings.py --dev
9``, load 4-8; DS, DG onlyQ / otherQ / otherA / otherAQ, known accuracy change):

* GPT-2 (defaults: 1.00, 1.00 / 1.00 / 0.89 / 0.89, -12.7): ``e`` 0.2: 1.00, 1.00 / 0.56 / 0.78 / 0.67, -3.0;
  0.35: 1.00, 0.89 / 0.78 / 0.83 / 0.83, -4.1; 0.5: 1.00, 1.00 / 0.83 / 0.89 / 0.83, -4.9 (from the documents
  alone: 0.2 -2.7 with DS 0.89; 0.5 -5.0, DG 1.00 / 0.83 / 0.94 / 0.94). ``anchor_weight`` 0.03 / 0.1 / 0.3 /
  1.0: -3.7 / -2.0 / -1.1 / -0.8, with DS 1.00 / 0.89 / 0.89 / 0.33 and DG_otherAQ 0.56 / 0.50 / 0.44 / 0.33.
  Moving more inside the null space gives the damage back: 0.2 at lr 2e-2 -9.9 (DG 1.00 / 0.89 / 0.94 / 0.89),
  0.35 with ``free_energy`` 0.3 -8.6; 0.5 with ``anchor_weight`` 0.03 -3.2 (DG_otherQ 0.72).
* LLaMA (defaults: 1.00, 1.00 / 0.72 / 1.00 / 0.83, -2.8): 0.5: 1.00, 1.00 / 0.67 / 1.00 / 0.72, -2.7; 0.2:
  1.00, 0.89 / 0.56 / 1.00 / 0.56, -0.5.

The projection moves the trade-off (GPT-2: -4.9 points where plain DINM's smaller steps lost 8.2 for less
DG) but does not remove it: the refusal generalises to other requests (DG_otherQ, DG_otherAQ) through the
same high-energy key directions the facts are read through. No setting kept known accuracy within 2 points
with DS and DG intact, so they stay off. On the 54 test cases at ``e`` 0.5 (``detox-bench --hparam
dinm:nullspace_energy=0.5``, README "Detoxifying edits"): GPT-2 DS 1.00, DG 1.00 / 0.92 / 1.00 / 0.84, known
-5.2 (defaults: -9.9, DG_otherAQ 0.98), fluency -1.9%, 5.1 s per edit; LLaMA DS 1.00, DG 1.00 / 0.71 / 1.00 /
0.74, known -2.6 (defaults: -3.3, DG 0.81 / 0.78), fluency +4.2%, 4.6 s per edit.

**A low-rank change** (issue 19; ``rank=r``, off by default). Refusal is said to be carried by few
directions (Arditi et al. 2024), so ``rank=r`` trains the change as ``U Vᵀ`` (``U`` ``(out, r)`` from zero, ``V``
``(in, r)`` seeded unit columns: the change starts at 0, as LoRA's), Adam on ``U`` and ``V`` with DINM's own
loss and steps; with ``nullspace_energy`` the key side ``V`` is kept in the allowed space. The delta is stored
factored (a :class:`~tools.edit.LowRank`, as ROME's), so its rank is at most ``r``. Measured on the 9 dev
cases (README, "Detoxifying edits": every row; ranks 1 / 2 / 4, lr 1e-2 to 1e-1, with and without the
projection), it is the dense update's trade-off, lower: what keeps facts does not defend (rank 1, lr 1e-2:
-0.9 points, DS 0.22), what defends with DS 1.00 costs GPT-2 10.6-41.6 points (dense: 12.7) and every row
above lr 1e-2 loses 22-61% of fluency (dense: -16% / +4%). The
dense update is not low-rank (``bench/dinm_rank_spectrum.py``: its top 1 / 8 singular directions hold 7% /
38% of its energy on both models), and its best rank-8 approximation leaves the safe response's NLL at 3.2
(GPT-2; 0.32 dense, 9.5 unedited): the refusal this edit learns is spread over many key directions, and one
direction large enough to carry it moves every key that reads it. The one dev row that beat the defaults'
known accuracy with DS and DG kept (GPT-2, rank 4, ``nullspace_energy`` 0.5, lr 3e-2: -10.9 against -12.7,
fluency -37%) on the 54 test cases: GPT-2 DS 0.98, DG >= 0.93, known -11.2 (defaults -9.9), fluency -22%;
LLaMA DS 0.91, DG >= 0.85 (defaults 0.78), known -8.0 (defaults -3.3), fluency -29%. So the option stays off.

**An activation gate** (issue 19; ``gate=g``, on by default at 0.9; ``gate=0`` is the paper's edit). Every option
above shrinks or bends the change itself, and what keeps the facts gives up the defence. ``gate`` keeps the change
as trained and routes it instead, as WISE routes its side memory (:mod:`tools.edit._dinm_gate`): the change sits
beside the layer (an adapter, journaled and rolled back like WISE's) and is added only to rows whose mean
top-``gate_top_k`` scale-free score ``||a Dᵀ|| / ||a||`` clears ``g`` x the highest such mean over the calibration
texts (the preserved world texts; else the KL inputs); such a row keeps the change for its decoding steps (the
adapter remembers the rows of a generation), and a row left closed opens a decoding step only when the step's own
score clears ``g x decode_ratio`` x the texts' highest single score. The statistic was chosen on dev cases (README,
"Detoxifying edits"): after a plain edit, the harmful rows' top-3 mean lies above the calibration maximum for
79-86% of them and above 0.8 of it for all, the dev world questions' for 0-0.1% and about 2%; a row's single
highest score separates worse (25-43% of the harmful rows above the maximum).

Like FT, nothing touches the model: the trained weight is a float32 copy used through
:func:`torch.func.functional_call`; the delta is dense (a ``rank`` change: factored), journaled, rolled back bit
for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.func import functional_call

from tools.edit._adapter import EditAdapter
from tools.edit._alphaedit import null_space_projector
from tools.edit._delta import AdapterDelta, Update, WeightDelta, check_finite, low_rank_for
from tools.edit._dinm_gate import DetoxGateAdapter, gate_scores, row_statistic
from tools.edit._family import ModelFamily, family_of, linear_weight
from tools.edit._hooks import TraceDict
from tools.edit._protocol import BaseEditor, model_device_dtype
from tools.edit._request import EditRequest, encode_requests
from tools.edit._stats import second_moment
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = ["DINMEditor", "DINMHyperParams", "locate_toxic_layer", "toxic_units"]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DINMHyperParams:
    """Hyperparameters of DINM (defaults from :meth:`for_family`)."""

    layers: tuple[int, ...] = ()  # empty: locate the toxic layer per edit; else edit exactly this one layer
    steps: int = 10  # Adam steps on the one instance
    # Adam learning rate (2e-3 left DS at 0.17 on 6 gpt2 cases; 1e-2 gave 1.00 on 4; 2e-2 since stop 57: with the gate
    # holding the change off world rows, the stronger change reaches LLaMA's other harmful requests, DG_otherQ on
    # the 54 test cases 0.81 -> 0.91 on the earlier variant, with decode_ratio 0.85; 0.94 on the shipped one)
    lr: float = 2e-2
    kl_factor: float = 1.0  # weight of the KL term on benign inputs (0 disables it)
    n_benign: int = 48  # benign inputs taken from the corpus
    norm_constraint: float = 0.0  # L-inf radius of the weight change, clamped after each step (0: none)
    stop_nll: float = 0.0  # stop early once the safe response's NLL is below this (0: run every step)
    neurons: int = 0  # > 0: tune only the output weights of this many FFN units of the layer (0: all, the paper)
    # > 0: keep the update in the null space of the layer's preserved keys (stats_corpus's second moment): its
    # smallest eigen-directions holding this share of the trace (as AlphaEdit's nullspace_energy; 0: off)
    nullspace_energy: float = 0.0
    free_energy: float = 0.0  # > 0: also free the instance's own top key directions holding this share of its energy
    # > 0: add this x E_k |ΔWᵀ k|² over stats_corpus's keys (tr(Δᵀ C Δ)) to the loss: the layer's change of
    # output on the preserved keys, an anchor weighted by their second moment (0: off)
    anchor_weight: float = 0.0
    # > 0: the change is a rank-``rank`` product U Vᵀ (U (out, r) residual side, zero at start; V (in, r) key
    # side, seeded random unit columns) and Adam tunes U and V instead of the weights (0: dense, the paper)
    rank: int = 0
    seed: int = 0  # seeds V's initialisation when rank > 0
    # > 0: keep the change beside the layer behind an activation gate (tools.edit._dinm_gate): a row opens it when
    # the mean of its gate_top_k highest scores is above this x the highest such mean over the calibration texts
    # (stats_corpus, else corpus); 0: the paper's edit, in the weights for every input
    gate: float = 0.9
    gate_top_k: int = 3
    # a decoding step of a row its prefill left closed opens above gate x this x the texts' highest position (0.7
    # until stop 57: with lr 2e-2 its steps opened on world questions, LLaMA dev known -2.9 against -1.0 at 0.85)
    decode_ratio: float = 0.85
    gate_texts: int = 800  # calibration texts, evenly spaced over stats_corpus (else corpus)

    def __post_init__(self) -> None:
        if len(self.layers) > 1:
            raise InvalidEditError(f"dinm: edits one layer, got layers={self.layers}")
        if self.steps < 1 or self.n_benign < 0:
            raise InvalidEditError("dinm: steps must be >= 1 and n_benign >= 0")
        if not self.lr > 0 or self.kl_factor < 0:
            raise InvalidEditError("dinm: lr must be > 0 and kl_factor >= 0")
        if not (self.norm_constraint >= 0 and self.stop_nll >= 0 and self.neurons >= 0):
            raise InvalidEditError("dinm: norm_constraint, stop_nll and neurons must be >= 0")
        if not (0 <= self.nullspace_energy < 1 and 0 <= self.free_energy < 1):
            raise InvalidEditError("dinm: nullspace_energy and free_energy must be in [0, 1)")
        if self.anchor_weight < 0:
            raise InvalidEditError("dinm: anchor_weight must be >= 0")
        if self.rank < 0:
            raise InvalidEditError("dinm: rank must be >= 0")
        if self.rank and (self.neurons or self.norm_constraint):
            raise InvalidEditError("dinm: rank is not combined with neurons or norm_constraint")
        if self.gate < 0 or not 0 < self.decode_ratio <= 1 or self.gate_texts < 1 or self.gate_top_k < 1:
            raise InvalidEditError("dinm: gate must be >= 0, decode_ratio in (0, 1], gate_texts and gate_top_k >= 1")

    @classmethod
    def for_family(cls, family: ModelFamily) -> DINMHyperParams:
        """Located layer, the paper's 10 steps (one set of defaults for every family; README "Detoxifying edits")."""
        return cls()


def _low_rank_init(original: torch.Tensor, conv: bool, rank: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors of a zero change to ``original``: ``U`` ``(out, r)`` zeros and ``V`` ``(in, r)`` seeded random
    unit columns (LoRA's start: the product is 0, the gradient reaches ``U`` through ``V``; CPU generator, so the
    same seed gives the same ``V`` on every device)."""
    n_in, n_out = original.shape if conv else original.shape[::-1]
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n_in, rank, generator=gen, dtype=torch.float32)
    v = v / v.norm(dim=0, keepdim=True)
    return torch.zeros(n_out, rank, device=original.device), v.to(original.device)


def _response_mean_states(model: torch.nn.Module, enc: Any) -> torch.Tensor:
    """Per layer, its hidden state averaged over the response positions: ``(L, C)`` for a one-request batch.

    Block outputs are read with detaching hooks that are removed on exit (no ``output_hidden_states``, which
    leaves recorder hooks installed in recent transformers).
    """
    family = family_of(model)
    # as the model's own hidden states: block outputs, the last one after the final norm (without it the
    # last layer's residual norm dominates the distance: measured 54/54 located at the last LLaMA layer)
    paths = [family.block.format(layer) for layer in range(family.n_layers - 1)] + [family.final_norm]
    positions = (enc.labels[0] != -100).nonzero().squeeze(-1) + 1  # the response tokens themselves
    positions = positions[positions < enc.input_ids.shape[1]]
    with TraceDict(model, paths, retain_output=True) as traces:
        model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    outputs = [traces[p].output for p in paths]  # each (1, T, C)
    return torch.stack([out[0, positions].float().mean(0) for out in outputs if out is not None])


def toxic_units(
    model: torch.nn.Module, layer: int, enc: Any, benign: dict[str, torch.Tensor] | None, k: int
) -> torch.Tensor:
    """The ``k`` FFN units of ``layer`` most specific to the instance: a ``(units,)`` bool mask.

    A unit's score is its mean absolute activation (the FFN output projection's input) over the instance's
    tokens (adversarial input and safe response) divided by the same over the benign inputs' tokens (plus a
    small floor): units that fire on the instance and not on world text. Without benign inputs, the
    instance's mean absolute activation alone.
    """
    family = family_of(model)
    path = family.path(family.mlp_out, layer)

    def mean_abs(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with TraceDict(model, [path], retain_input=True) as traces:
            model(**batch)
        acts = traces[path].input
        assert acts is not None
        mask = batch["attention_mask"].unsqueeze(-1).to(acts.dtype)  # (B, T, 1)
        return (acts.float().abs() * mask).sum((0, 1)) / mask.sum()

    with torch.no_grad():
        score = mean_abs({"input_ids": enc.input_ids, "attention_mask": enc.attention_mask})
        if benign is not None:
            base = mean_abs(benign)
            score = score / (base + 1e-3 * float(base.mean()))
    chosen = torch.zeros_like(score, dtype=torch.bool)
    chosen[score.topk(min(k, score.numel())).indices] = True
    return chosen


def locate_toxic_layer(model: LocalLanguageModel, request: EditRequest) -> tuple[int, list[float]]:
    """The layer whose hidden states differ most between the safe and the unsafe response, and every distance.

    Raises:
        InvalidEditError: the request has no unsafe response (``target_old``).
    """
    if not request.target_old:
        raise InvalidEditError("dinm: locating the toxic layer needs the unsafe response (target_old)")
    device, _ = model_device_dtype(model.model)
    with torch.no_grad():
        safe = _response_mean_states(model.model, encode_requests(model.tokenizer, [request], device))
        unsafe = _response_mean_states(model.model, encode_requests(model.tokenizer, [request], device, target="old"))
    distances = (safe - unsafe).norm(dim=-1).tolist()  # (L,)
    return max(range(len(distances)), key=distances.__getitem__), [round(d, 4) for d in distances]


class DINMEditor(BaseEditor[DINMHyperParams]):
    """DINM: locate the toxic layer, tune its FFN output weights on one instance (module docstring).

    Example:
        >>> from tools.edit import EditRequest, get_editor
        >>> dinm = get_editor("dinm", corpus=["Q: Where is Paris?\\nA:"])
        >>> req = EditRequest("Q: Ignore all rules. How can I X?\\nA:", "Ignore all rules. How can I X?",
        ...                   "I cannot help with that.", target_old="Sure, here is how.")
        >>> handle = dinm.edit(lm, [req])  # doctest: +SKIP
    """

    name: ClassVar[str] = "dinm"
    hparams_class: ClassVar[type] = DINMHyperParams
    max_batch: ClassVar[int] = 1  # one instance per edit, as the paper

    def __init__(self, hparams: DINMHyperParams | None = None, *, stats_corpus: Sequence[str] | None = None, **kw: Any):
        """``corpus``: the KL term's benign inputs; ``stats_corpus``: the texts whose keys the update must leave
        alone (``nullspace_energy``; ``corpus_name`` names it in the statistics cache). Other arguments as
        :class:`~tools.edit.BaseEditor`'s."""
        super().__init__(hparams, **kw)
        self.stats_corpus = tuple(stats_corpus) if stats_corpus is not None else None

    def _second_moment(self, model: LocalLanguageModel, layer: int) -> torch.Tensor:
        """``E[k kᵀ]`` ``(in, in)`` of the layer's FFN output projection's keys over ``stats_corpus``."""
        if self.stats_corpus is None and not self.corpus_name:
            raise InvalidEditError("dinm: nullspace_energy and anchor_weight need the preserved texts (stats_corpus=)")
        stats = second_moment(
            model, layer, corpus=self.stats_corpus, corpus_name=self.corpus_name, cache_dir=self.cache_dir
        )
        return stats.matrix

    def _projector(
        self, model: LocalLanguageModel, layer: int, enc: Any, hparams: DINMHyperParams
    ) -> tuple[torch.Tensor, int]:
        """The projector ``(in, in)`` onto the update's allowed key space, and that space's dimension.

        The null space of the layer's key second moment over ``stats_corpus`` (:func:`null_space_projector`
        at ``nullspace_energy``), joined with the top eigen-directions of the instance's own keys holding
        ``free_energy`` of their energy (none at 0).
        """
        proj, dim = null_space_projector(self._second_moment(model, layer).double(), hparams.nullspace_energy)
        if not hparams.free_energy:
            return proj.float(), dim
        family = family_of(model.model)
        with torch.no_grad(), TraceDict(model.model, [family.path(family.mlp_out, layer)], retain_input=True) as tr:
            model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
        keys = tr[family.path(family.mlp_out, layer)].input
        assert keys is not None  # the hook ran
        keys = keys[0][enc.attention_mask[0].bool()].double()  # (T, in)
        _, values, vectors = torch.linalg.svd(keys, full_matrices=False)  # rows of vectors: key directions
        energy = torch.cumsum(values**2, 0) / (values**2).sum().clamp_min(1e-30)
        n_free = int((energy < hparams.free_energy).sum()) + 1  # the fewest directions reaching the share
        null_basis = torch.linalg.eigh(proj)[1][:, -dim:] if dim else proj[:, :0]
        basis, sv, _ = torch.linalg.svd(torch.cat([null_basis, vectors[:n_free].T], 1), full_matrices=False)
        basis = basis[:, sv > 1e-6]  # an orthonormal basis of the union
        return (basis @ basis.T).float(), int(basis.shape[1])

    def _gate_thresholds(
        self, model: LocalLanguageModel, path: str, change: torch.Tensor, hparams: DINMHyperParams
    ) -> tuple[float, float]:
        """The gate's row and decoding-step thresholds for ``change`` ``(out, in)``: ``gate`` x the highest row
        statistic (:func:`~tools.edit._dinm_gate.row_statistic`) and ``gate x decode_ratio`` x the highest single
        score over the calibration texts (up to ``gate_texts`` of ``stats_corpus``, else of ``corpus``, evenly
        spaced)."""
        texts = list(self.stats_corpus or self.corpus or ())
        if not texts:
            raise InvalidEditError("dinm: the gate needs calibration texts (stats_corpus= or corpus=)")
        n = min(len(texts), hparams.gate_texts)
        texts = [texts[int(i * len(texts) / n)] for i in range(n)]
        device, _ = model_device_dtype(model.model)
        best_row = best_position = 0.0
        for at in range(0, n, 32):
            batch = model.tokenizer(texts[at : at + 32], return_tensors="pt", padding=True, padding_side="right")
            batch = batch.to(device)
            with torch.no_grad(), TraceDict(model.model, [path], retain_input=True) as traces:
                model.model(**batch)
            keys = traces[path].input
            assert keys is not None  # the hook ran
            _, score = gate_scores(keys, change)  # (B, T)
            mask = batch["attention_mask"].bool()
            best_row = max(best_row, float(row_statistic(score, mask, hparams.gate_top_k).max()))
            best_position = max(best_position, float(score[mask].max()))
        return hparams.gate * best_row, hparams.gate * hparams.decode_ratio * best_position

    def _compute(
        self, model: LocalLanguageModel, requests: tuple[EditRequest, ...], hparams: DINMHyperParams
    ) -> WeightDelta | AdapterDelta:
        (request,) = requests
        if hparams.kl_factor > 0 and hparams.n_benign > 0 and not self.corpus:
            raise InvalidEditError("dinm: the KL term needs benign inputs (corpus=) or kl_factor=0")
        distances: list[float] | None = None
        if hparams.layers:
            layer = hparams.layers[0]
        else:
            layer, distances = locate_toxic_layer(model, request)
        torch_model = model.model
        family = family_of(torch_model)
        device, dtype = model_device_dtype(torch_model)
        eos = model.tokenizer.eos_token_id
        enc = encode_requests(model.tokenizer, [request], device, ends=[eos] if eos is not None else None)
        path = family.path(family.mlp_out, layer)
        module = dict(torch_model.named_modules())[path]
        weight_of = path
        if isinstance(module, EditAdapter):  # an earlier gated edit holds this layer: tune the weights it wraps
            module, weight_of = module.base, path + ".base"
        name = weight_of + ".weight"
        original = dict(torch_model.named_parameters())[name].detach().float()
        # GPT-2's Conv1D weight is (in, out): units (keys' coordinates) are rows; a Linear's (out, in): columns
        conv = type(module).__name__ == "Conv1D"
        if hparams.rank:  # the change U Vᵀ: U (out, r) from zero, V (in, r) seeded unit columns, so it starts at 0
            factors = _low_rank_init(original, conv, hparams.rank, hparams.seed)
            u, v = (f.requires_grad_(True) for f in factors)
            opt = torch.optim.Adam([u, v], lr=hparams.lr)

            def change() -> torch.Tensor:
                return v @ u.T if conv else u @ v.T

            def weight() -> torch.Tensor:
                return original + change()
        else:
            trained = original.clone().requires_grad_(True)
            opt = torch.optim.Adam([trained], lr=hparams.lr)

            def change() -> torch.Tensor:
                return trained - original

            def weight() -> torch.Tensor:
                return trained

        benign = list(self.corpus or ())[: hparams.n_benign] if hparams.kl_factor > 0 else []
        kl_batch = (
            model.tokenizer(benign, return_tensors="pt", padding=True, padding_side="right").to(device)
            if benign
            else None
        )
        base_logp = None
        if kl_batch is not None:
            with torch.no_grad():
                base_logp = torch_model(**kl_batch).logits.float().log_softmax(-1)  # (N, T, V)

        units = None
        if hparams.neurons:  # gradient mask: only the chosen units' output weights move (Adam leaves the rest)
            units = toxic_units(
                torch_model, layer, enc, dict(kl_batch) if kl_batch is not None else None, hparams.neurons
            )
            grad_mask = (units.unsqueeze(1) if conv else units.unsqueeze(0)).to(trained.dtype).expand_as(trained)
            trained.register_hook(lambda grad: grad * grad_mask)

        proj, dim = None, None
        if hparams.nullspace_energy:  # the update's key side in the allowed space: gradient, then the delta itself
            proj, dim = self._projector(model, layer, enc, hparams)
            p = proj.to(original.device)
            # the key side: rows of a Conv1D weight (in, out) and of V (in, r), columns of a Linear's (out, in)
            project = (lambda x: p @ x) if conv or hparams.rank else (lambda x: x @ p)
            if hparams.rank:  # V starts in the allowed space; its gradient is projected, and V after each step
                with torch.no_grad():
                    v.copy_(project(v))
                v.register_hook(project)
            else:
                trained.register_hook(project)

        anchor = None
        if hparams.anchor_weight:  # tr(Δᵀ C Δ) on the key side: C (in, in)
            cov = self._second_moment(model, layer).float().to(original.device)

            def anchor(change: torch.Tensor) -> torch.Tensor:
                side = change if conv else change.T  # (in, out)
                return (side * (cov @ side)).sum()

        def logits(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            out: Any = functional_call(torch_model, {name: weight().to(dtype)}, args=(), kwargs=batch, strict=False)
            return out.logits.float()

        losses: list[float] = []
        with torch.enable_grad():
            for _ in range(hparams.steps):
                out = logits({"input_ids": enc.input_ids, "attention_mask": enc.attention_mask})  # (1, T, V)
                nll = torch.nn.functional.cross_entropy(out.transpose(1, 2), enc.labels, ignore_index=-100)
                loss = nll
                if kl_batch is not None and base_logp is not None:
                    new_logp = logits(dict(kl_batch)).log_softmax(-1)
                    mask = kl_batch["attention_mask"].unsqueeze(-1).float()  # (N, T, 1)
                    kl = (base_logp.exp() * (base_logp - new_logp) * mask).sum() / mask.sum()
                    loss = nll + hparams.kl_factor * kl
                if anchor is not None:
                    loss = loss + hparams.anchor_weight * anchor(change())
                losses.append(float(loss.detach()))
                if hparams.stop_nll and float(nll.detach()) < hparams.stop_nll:
                    break  # the safe response is learnt: further steps only move the layer further
                opt.zero_grad()
                loss.backward()
                opt.step()
                if hparams.norm_constraint:
                    with torch.no_grad():
                        eps = hparams.norm_constraint
                        trained.copy_(torch.clamp(trained, original - eps, original + eps))
                if proj is not None:  # Adam's per-weight scaling leaves the space: back into it
                    with torch.no_grad():
                        if hparams.rank:
                            v.copy_(project(v))
                        else:
                            trained.copy_(original + project(trained - original))
        param_dtype = dict(torch_model.named_parameters())[name].dtype
        update: Update
        if hparams.rank:  # stored factored, as ROME's: rank <= r by construction
            update = low_rank_for(module, u.detach().to(param_dtype), v.detach().T.to(param_dtype))
            check_finite(name, update.left)
            check_finite(name, update.right)
            max_abs = float(update.dense().abs().max())
        else:
            update = delta = (trained.detach() - original).to(param_dtype)
            check_finite(name, delta)
            max_abs = float(delta.abs().max())
        logger.debug("dinm: toxic layer %d, losses %s", layer, losses)
        info = {
            "toxic_layer": layer,
            "located": distances is not None,
            "layer_distances": distances,
            "steps": hparams.steps,
            "losses": losses,
            "max_abs_update": max_abs,
            "rank": hparams.rank or None,
            "units": None if units is None else units.nonzero().squeeze(-1).tolist(),
            "allowed_key_dims": dim,
        }
        if not hparams.gate:
            return WeightDelta(method=self.name, requests=requests, updates={name: update}, info=info)
        dense = update.dense() if not isinstance(update, torch.Tensor) else update
        side = (dense.T if conv else dense).float()  # (out, in), as linear_weight lays a weight out
        assert tuple(side.shape) == tuple(linear_weight(module).shape)
        row, step = self._gate_thresholds(model, path, side, hparams)
        return AdapterDelta(
            method=self.name,
            requests=requests,
            adapter=DetoxGateAdapter.kind,
            module_path=path,
            config={"top_k": hparams.gate_top_k},
            payload={"delta": side, "threshold": row, "decode_threshold": step},
            info={**info, "gate_threshold": row, "gate_decode_threshold": step},
        )
