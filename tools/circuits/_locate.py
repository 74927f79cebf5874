"""Knowledge location for editing: rank MLP layers by their circuit attribution at the subject's last token.

:class:`CircuitLocator` is a :class:`tools.edit.KnowledgeLocator`. For each relation of the requests it asks
``cases`` (supplied by the caller, e.g. :func:`eval.circuits.relation_case_source` from the reference world)
for the circuit cases of that relation, runs EAP-IG on each, and ranks the MLPs by their mean attribution at
the subject's last token: the MLPs through which the relation's circuit reads the subject (Knowledge
Circuits; ROME's causal-tracing peak plays the same role). Rankings are cached per relation and model
identity, so a benchmark of 100 edits attributes each relation once. The model is only read.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from tools.circuits._discover import CircuitFinder, FactCase
from tools.errors import InvalidInputError

__all__ = ["CaseSource", "CircuitLocator"]

logger = logging.getLogger(__name__)

# (relation id, subject being edited, tokenizer) -> the relation's circuit cases (other subjects)
CaseSource = Callable[[str, str, Any], Sequence[FactCase]]


class CircuitLocator:
    """Ranks MLP layers from a relation's circuits (see the module docstring).

    Args:
        cases: gives the circuit cases of a relation (the edited subject excluded).
        steps: integrated-gradient steps of EAP-IG.

    Raises (from :meth:`rank_layers`):
        InvalidInputError: a request has no relation, or the relation has no usable case.
        UnsupportedLayoutError: the model is neither GPT-2 nor LLaMA.
    """

    def __init__(self, cases: CaseSource, *, steps: int = 5) -> None:
        self.cases = cases
        self.steps = steps
        self._cache: dict[tuple[int, str], tuple[float, ...]] = {}
        self.chosen: dict[str, tuple[int, ...]] = {}  # relation -> ranking, for reports

    def mlp_scores(self, model: Any, relation: str, subject: str) -> tuple[float, ...]:
        """Mean attribution of each MLP at the subject's last token over the relation's cases."""
        key = (id(model.model), relation)
        if key not in self._cache:
            finder = CircuitFinder(model.model, model.tokenizer, steps=self.steps)
            cases = list(self.cases(relation, subject, model.tokenizer))
            if not cases:
                raise InvalidInputError(f"no circuit case for relation {relation!r}: cannot locate its layers")
            scores = [finder.attribute(c).mlp_at_subject for c in cases]
            self._cache[key] = tuple(statistics.fmean(col) for col in zip(*scores, strict=True))
            logger.info("relation %s: MLP attribution at the subject %s", relation, self._cache[key])
        return self._cache[key]

    def rank_layers(self, model: Any, requests: tuple[Any, ...]) -> tuple[int, ...]:
        """MLP layers, most attributed first, summed over the requests' relations."""
        if not requests:
            raise InvalidInputError("no edit requests to locate")
        if not all(req.relation for req in requests):
            raise InvalidInputError("an edit request names no relation: cannot locate its layers")
        per = [self.mlp_scores(model, req.relation, req.subject) for req in requests]
        total = [sum(col) for col in zip(*per, strict=True)]
        ranking = tuple(sorted(range(len(total)), key=lambda i: -total[i]))
        for req in requests:
            self.chosen[req.relation] = ranking
        return ranking
