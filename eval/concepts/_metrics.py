"""ConceptEdit's concept-specific metrics: Instance Change and Concept Consistency.

* **Instance Change** — the model's judgement of which entities belong to the edited concept, before vs after
  the edit: each instance-of question ("Is X a <concept>?") is answered greedily, the answer read as ``yes`` /
  ``no`` (:func:`yes_no`; anything else is ``other``), and a probe *flips* when the reading after the edit
  differs from the one before. ``instance_change`` = flipped / probes, over all probes of all cases; the count
  of flips is reported beside it. ConceptEdit (EasyEdit ``run_concept_editing.py``) reports the difference of
  its instance score before and after; a per-probe flip rate counts a change in either direction, so it is
  never smaller, and it says how many instances moved.
* **Concept Consistency** — semantic agreement of the definition the edited model generates (greedy, from the
  edit prompt "A <concept> is") with the target definition. The default judge is the cosine similarity of
  MiniLM sentence embeddings (:class:`EmbeddingConsistency`, in [-1, 1], higher is more similar);
  ConceptEdit asks GPT-4 instead, and :class:`LLMConsistencyJudge` is that seam: any ``LanguageModel``
  (e.g. an OpenAI-compatible endpoint) asked whether two definitions mean the same, scored 1 / 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from eval._normalize import normalize_answer
from memory import Embedder
from tools.errors import InvalidInputError
from tools.lm import LanguageModel

__all__ = [
    "ConsistencyJudge",
    "EmbeddingConsistency",
    "InstanceChange",
    "LLMConsistencyJudge",
    "YesNo",
    "instance_change",
    "yes_no",
]

YesNo = Literal["yes", "no", "other"]


def yes_no(answer: str) -> YesNo:
    """The first word of a normalised answer read as ``yes`` / ``no``; ``other`` for anything else."""
    words = normalize_answer(answer).split()
    first = words[0] if words else ""
    return "yes" if first == "yes" else "no" if first == "no" else "other"


@dataclass(frozen=True)
class InstanceChange:
    """Instance-of probes whose yes/no reading changed with the edit.

    Attributes:
        flipped: probes read differently after the edit.
        probes: probes counted.
        rate: ``flipped / probes`` (``None`` without probes).
    """

    flipped: int
    probes: int

    @property
    def rate(self) -> float | None:
        return self.flipped / self.probes if self.probes else None


def instance_change(before: Sequence[str], after: Sequence[str]) -> InstanceChange:
    """Compare greedy answers to the same instance-of questions before and after an edit.

    Raises:
        InvalidInputError: the two lists differ in length.
    """
    if len(before) != len(after):
        raise InvalidInputError(f"{len(before)} answers before the edit but {len(after)} after")
    flipped = sum(yes_no(b) != yes_no(a) for b, a in zip(before, after, strict=True))
    return InstanceChange(flipped=flipped, probes=len(before))


class ConsistencyJudge(Protocol):
    """Scores generated definitions against target ones (higher is more consistent)."""

    def consistency(self, generated: Sequence[str], targets: Sequence[str]) -> list[float]: ...


class EmbeddingConsistency:
    """Cosine similarity of sentence embeddings (MiniLM by default in the CLI); in [-1, 1]."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def consistency(self, generated: Sequence[str], targets: Sequence[str]) -> list[float]:
        """One cosine per (generated, target) pair; an empty generation scores 0.

        Raises:
            InvalidInputError: the lists differ in length.
        """
        if len(generated) != len(targets):
            raise InvalidInputError("generated and targets must have the same length")
        if not generated:
            return []
        texts = [g if g.strip() else "." for g in generated]
        a = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        b = np.asarray(self.embedder.embed(list(targets)), dtype=np.float32)
        cos = (a * b).sum(axis=1)  # rows are unit-norm (Embedder contract)
        return [0.0 if not g.strip() else float(c) for g, c in zip(generated, cos, strict=True)]


_JUDGE_PROMPT = (
    "Do these two definitions describe the same concept? Answer yes or no.\n"
    "Definition 1: {generated}\nDefinition 2: {target}\nAnswer:"
)


class LLMConsistencyJudge:
    """A language model asked whether the generated and the target definitions mean the same (1.0 yes, 0.0 else).

    ConceptEdit grades Concept Consistency with GPT-4; any OpenAI-compatible endpoint fits this seam.
    """

    def __init__(self, lm: LanguageModel, template: str = _JUDGE_PROMPT) -> None:
        if "{generated}" not in template or "{target}" not in template:
            raise InvalidInputError("a judge template needs {generated} and {target} slots")
        self.lm = lm
        self.template = template

    def consistency(self, generated: Sequence[str], targets: Sequence[str]) -> list[float]:
        if len(generated) != len(targets):
            raise InvalidInputError("generated and targets must have the same length")
        prompts = [self.template.format(generated=g, target=t) for g, t in zip(generated, targets, strict=True)]
        return [1.0 if yes_no(g.text) == "yes" else 0.0 for g in self.lm.generate(prompts, max_new_tokens=4)]
