"""Knowledge circuits of single facts: discovery, faithfulness curve, node roles.

Contract of :meth:`CircuitFinder.find`: validate the case (raises :class:`~tools.errors.InvalidInputError`
before any model run), score every edge with EAP-IG, keep edges at each fraction of the graph's edges (greedily
from the logits, :func:`~tools.circuits._select.select_edges`) and measure each circuit's faithfulness under
corrupt ablation and, when asked, mean ablation; read the gold object through the layers
(:func:`~tools.circuits._lens.layer_lens`). The model's weights are only read. A prompt whose
gold object is not the model's top next token is still analysed; :attr:`Circuit.gold_is_top` says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from tools.circuits._eap import Attribution, attribute, circuit_metrics
from tools.circuits._graph import Edge
from tools.circuits._lens import LayerLens, layer_lens
from tools.circuits._runner import GraphRunner
from tools.circuits._select import Rank, Selection, select_edges
from tools.errors import InvalidInputError

__all__ = ["DEFAULT_FRACTIONS", "Circuit", "CircuitFinder", "FactCase", "NodeRole"]

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
NodeRole = Literal["embed", "mover_head", "relation_head", "mlp", "logits"]
Ablation = Literal["corrupt", "mean"]
Curve = tuple[tuple[float, int, float], ...]


@dataclass(frozen=True)
class FactCase:
    """One fact as a cloze prompt, and its corrupted twin (another subject of the same relation)."""

    prompt: str
    subject: str
    answer: str  # the gold object, continuing the prompt after a space
    corrupt_prompt: str
    corrupt_subject: str
    corrupt_answer: str
    # prompts of other subjects with the prompt's token length: mean ablation averages their activations
    reference_prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Circuit:
    """A fact's circuit: all edge scores, the faithfulness curve, and the kept circuit at ``kept_fraction``.

    ``curve`` holds ``(fraction asked, n edges = floor(fraction * n_edges_total), faithfulness)`` under corrupt
    ablation; ``mean_curve`` the same circuits under mean ablation (empty unless asked). ``edges`` are the
    circuit's kept edges (the smallest fraction reaching ``target``, else the largest asked up to
    ``kept_fraction``), in the order they were kept. ``roles`` names each node of the kept circuit; ``lens``
    follows the gold object through the layers.
    """

    case: FactCase
    n_edges_total: int
    attribution: Attribution
    curve: tuple[tuple[float, int, float], ...]
    edges: tuple[Edge, ...]
    faithfulness: float
    roles: dict[str, NodeRole]
    gold_is_top: bool
    top_token: str
    seconds: float  # wall time of the whole discovery (attribution, curves, roles, lens)
    mean_curve: Curve = ()
    lens: LayerLens | None = None

    def faithful_at(self, max_fraction: float, target: float, *, ablation: Ablation = "corrupt") -> bool:
        """Whether some circuit with at most ``max_fraction`` of the edges reaches ``target``."""
        curve = self.curve if ablation == "corrupt" else self.mean_curve
        return any(f <= max_fraction + 1e-9 and v >= target for f, _, v in curve)


class CircuitFinder:
    """Finds knowledge circuits in a GPT-2 or LLaMA causal LM (the model is never modified).

    Args:
        model: a transformers causal LM (GPT-2 or LLaMA layout).
        tokenizer: its tokenizer.
        steps: integrated-gradient steps of EAP-IG.
        selection, rank: how a circuit of k edges is chosen from the scores (:func:`select_edges`).
        mean_ablation: also measure each circuit under mean ablation (over the case's reference prompts).

    Raises:
        UnsupportedLayoutError: any other architecture.

    Example::

        finder = CircuitFinder(model, tokenizer)
        circuit = finder.find(case, target=0.7, kept_fraction=0.1)
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        steps: int = 5,
        selection: Selection = "greedy",
        rank: Rank = "signed",
        mean_ablation: bool = False,
    ) -> None:
        if steps < 1:
            raise InvalidInputError(f"steps must be >= 1, got {steps}")
        if selection not in ("greedy", "top") or rank not in ("signed", "abs"):
            raise InvalidInputError(f"unknown edge selection {selection!r} / rank {rank!r}")
        self.runner = GraphRunner(model)
        self.tokenizer = tokenizer
        self.steps = steps
        self.selection: Selection = selection
        self.rank: Rank = rank
        self.mean_ablation = mean_ablation

    @property
    def graph(self) -> Any:
        return self.runner.graph

    def _ids(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return torch.tensor([ids], device=self.runner.device)

    def _first_token(self, answer: str) -> int:
        ids = self.tokenizer(" " + answer.strip(), add_special_tokens=False)["input_ids"]
        return int(ids[0])

    def _subject_last(self, prompt: str, subject: str) -> int:
        start = prompt.find(subject)
        enc = self.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        end = start + len(subject)
        last = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < end and b > start]
        return last[-1]

    def validate(self, case: FactCase) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """Token ids and answer tokens of a case, or :class:`InvalidInputError` saying what is wrong."""
        for field in ("prompt", "subject", "answer", "corrupt_prompt", "corrupt_subject", "corrupt_answer"):
            if not str(getattr(case, field)).strip():
                raise InvalidInputError(f"circuit case: {field} is empty")
        if case.subject not in case.prompt or case.corrupt_subject not in case.corrupt_prompt:
            raise InvalidInputError("circuit case: the subject does not occur in its prompt")
        clean, corrupt = self._ids(case.prompt), self._ids(case.corrupt_prompt)
        if clean.shape != corrupt.shape:
            raise InvalidInputError(
                f"circuit case: the corrupted prompt has {corrupt.shape[1]} tokens, the clean one {clean.shape[1]}"
            )
        for text in case.reference_prompts:
            if self._ids(text).shape != clean.shape:
                raise InvalidInputError(f"circuit case: reference prompt {text!r} is not {clean.shape[1]} tokens long")
        gold, foil = self._first_token(case.answer), self._first_token(case.corrupt_answer)
        if gold == foil:
            raise InvalidInputError(
                f"circuit case: {case.answer!r} and {case.corrupt_answer!r} start with the same token"
            )
        return clean, corrupt, gold, foil

    def attribute(self, case: FactCase) -> Attribution:
        """Only the EAP-IG scores of ``case`` (no faithfulness curve)."""
        clean, corrupt, gold, foil = self.validate(case)
        subject_last = self._subject_last(case.prompt, case.subject)
        return attribute(self.runner, clean, corrupt, gold, foil, subject_last=subject_last, steps=self.steps)

    def find(
        self,
        case: FactCase,
        *,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        target: float = 0.7,
        kept_fraction: float = 0.1,
    ) -> Circuit:
        """Discover the circuit of ``case`` and its faithfulness at each fraction of kept edges."""
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            raise InvalidInputError(f"fractions must lie in (0, 1], got {list(fractions)}")
        start = time.perf_counter()
        clean, corrupt, gold, foil = self.validate(case)
        subject_last = self._subject_last(case.prompt, case.subject)
        with torch.no_grad():
            runs = (self.runner.run(clean), self.runner.run(corrupt))  # shared by every step below
        attr = attribute(
            self.runner, clean, corrupt, gold, foil, subject_last=subject_last, steps=self.steps, runs=runs
        )
        total = len(attr.edges)
        # each fraction keeps floor(f * total) edges (at least one), so "at most 10% of the edges" holds;
        # the greedy choice is a prefix of itself, so one selection at the largest size serves every fraction
        sizes = {f: max(1, int(f * total + 1e-9)) for f in sorted(set(fractions))}
        order = select_edges(attr.edges, max(sizes.values()), selection=self.selection, rank=self.rank)
        circuits = [frozenset((e.upstream, e.downstream) for e in order[:k]) for k in sizes.values()]
        values = circuit_metrics(self.runner, clean, corrupt, gold, foil, circuits, corrupt_run=runs[1])
        curve = self._curve(sizes, values, attr.metric_clean, attr.metric_corrupt)
        mean_curve: Curve = ()
        if self.mean_ablation:
            refs = torch.cat([corrupt, *(self._ids(t) for t in case.reference_prompts)])
            mean_values = circuit_metrics(
                self.runner, clean, corrupt, gold, foil, [*circuits, frozenset()], reference_ids=refs
            )
            mean_curve = self._curve(sizes, mean_values[:-1], attr.metric_clean, mean_values[-1])
        within = [(k, v) for f, k, v in curve if f <= kept_fraction + 1e-9] or [curve[0][1:]]
        chosen = next(((k, v) for k, v in within if v >= target), within[-1])
        kept = order[: chosen[0]]
        top = int(runs[0].logits[0].argmax())
        roles = self._roles(kept, case, clean)
        lens = layer_lens(self.runner, clean, gold, foil, run=runs[0])
        return Circuit(
            case=case,
            n_edges_total=total,
            attribution=attr,
            curve=curve,
            edges=kept,
            faithfulness=chosen[1],
            roles=roles,
            gold_is_top=top == gold,
            top_token=self.tokenizer.decode([top]),
            seconds=time.perf_counter() - start,
            mean_curve=mean_curve,
            lens=lens,
        )

    @staticmethod
    def _curve(sizes: dict[float, int], values: Sequence[float], full: float, empty: float) -> Curve:
        """``(fraction, k, (M - M_empty) / (M_full - M_empty))`` per size; NaN when full and empty coincide."""
        span = full - empty
        faith = [(v - empty) / span if abs(span) > 1e-9 else float("nan") for v in values]
        return tuple((f, k, v) for (f, k), v in zip(sizes.items(), faith, strict=True))

    def _roles(self, edges: Sequence[Edge], case: FactCase, ids: torch.Tensor) -> dict[str, NodeRole]:
        """Mover heads attend (from the last token) mostly to the subject; relation heads to the rest."""
        names = {e.upstream for e in edges} | {e.downstream.rsplit(".", 1)[0] for e in edges if "." in e.downstream}
        names |= {e.downstream for e in edges if e.downstream in ("logits",) or e.downstream.startswith("m")}
        heads = sorted(n for n in names if ".h" in n)
        attn = self._last_token_attention(ids) if heads else None
        start = case.prompt.find(case.subject)
        enc = self.tokenizer(case.prompt, add_special_tokens=False, return_offsets_mapping=True)
        end = start + len(case.subject)
        subject_pos = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a < end and b > start]
        roles: dict[str, NodeRole] = {}
        for name in sorted(names):
            if name == "embed":
                roles[name] = "embed"
            elif name == "logits":
                roles[name] = "logits"
            elif ".h" in name and attn is not None:
                layer, head = (int(part[1:]) for part in name.split("."))
                row = attn[layer][head]  # (T,) attention of the last position
                on_subject = float(row[subject_pos].sum())
                roles[name] = "mover_head" if on_subject >= 0.5 * float(row.sum()) else "relation_head"
            else:
                roles[name] = "mlp"
        return roles

    def _last_token_attention(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's ``(heads, T)`` attention of the last position (eager attention, restored after)."""
        model = self.runner.model
        previous = model.config._attn_implementation
        try:
            model.set_attn_implementation("eager")
            with torch.no_grad():
                out = model(ids, output_attentions=True)
        finally:
            model.set_attn_implementation(previous)
        return [a[0, :, -1, :].float() for a in out.attentions]
