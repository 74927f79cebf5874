"""``factagent detox-bench``: SafeEdit's metrics for detox editors on the vulnerable reference variants.

Each case is edited alone (compute, apply, measure, roll back), so every figure is "one detox edit per case,
averaged over the cases". Per case, the edited model's greedy answer (one line, up to ``max_new_tokens``) is
judged on:

* ``ds``          the adversarial input itself (Defense Success);
* ``dg_onlyq``    the bare harmful request;
* ``dg_otherq``   the same attack around other (held-out) requests;
* ``dg_othera``   other (held-out) attacks around the same request;
* ``dg_otheraq``  other attacks around other requests.

A score is the share of safe answers. General performance: ``known_accuracy`` is the world check's
``known_train`` (exact match of KNOWN facts, one cloze and one question per fact) on ``known_limit`` facts;
``fluency`` is KnowEdit's n-gram entropy of the answers to the case's inputs. Both are given for the unedited
model (``_before``) and averaged over the edited ones (``_after``). ``seconds_per_edit`` is compute + apply.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval._normalize import exact_match
from eval.editing import fluency
from eval.world._check import Probe, build_probes
from eval.world._schema import World
from eval.world.safety._judge import SafetyJudge
from eval.world.safety._slice import SafetyCase
from tools.edit import BaseEditor, Editor, EditRequest, get_editor
from tools.errors import InvalidEditError
from tools.lm import LocalLanguageModel

__all__ = [
    "DetoxResult",
    "benign_prompts",
    "default_benign_prompts",
    "default_dinm_inputs",
    "detox_request",
    "dev_known_probes",
    "run_detox_bench",
    "world_stats",
]
logger = logging.getLogger(__name__)
METRICS = ("ds", "dg_onlyq", "dg_otherq", "dg_othera", "dg_otheraq")


@dataclass(frozen=True)
class DetoxResult:
    """One method on one model (the ``--json`` object; field names as the issue's machine-readable form)."""

    method: str
    model: str
    ds: float
    dg_onlyq: float
    dg_otherq: float
    dg_othera: float
    dg_otheraq: float
    known_accuracy_before: float
    known_accuracy_after: float
    fluency_before: float
    fluency_after: float
    seconds_per_edit: float
    n_cases: int
    before: dict[str, float] = field(default_factory=dict)  # the five safety scores of the unedited model
    toxic_layers: dict[str, int] = field(default_factory=dict)  # edited layer -> cases (DINM's location)

    def to_json(self) -> dict[str, Any]:
        """The JSON object (the issue's fields, then ``before`` and ``toxic_layers``)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def detox_request(lm: LocalLanguageModel, case: SafetyCase) -> EditRequest:
    """The edit request of a case: the adversarial input in the model's prompt format -> the safe response."""
    return EditRequest(
        prompt=lm.prompt_format.question(case.adversarial_input),
        subject=case.adversarial_input,
        target_new=case.safe_response,
        target_old=case.unsafe_response or None,
        relation="safety:" + case.category,
    )


def benign_prompts(world: World, lm: LocalLanguageModel, n: int = 48, avoid: Sequence[str] = ()) -> list[str]:
    """``n`` benign world texts, each a KNOWN fact's prompt *with its answer* (DINM's KL inputs).

    The facts are evenly spaced over ALL known facts (so over every relation: the facts are stored relation by
    relation, and the first ``n`` covered 3 of the 17 relations), each giving its training question (in the
    model's prompt format) and its training cloze, alternating, so the KL term covers both the
    question-answering the world check probes and plain world text; the answer is part of the text because
    the edited layer's harm shows on the answer tokens (a KL on prompts ending in ``A:`` constrains only the
    first answer token). A fact either of whose prompts is in ``avoid`` (the known-accuracy check's) is
    skipped whole, so the KL never sees a fact whose recall is measured.
    """
    skip = set(avoid)
    probes = [p for p in build_probes(world, lm.prompt_format) if p.metric == "known_train"]
    pairs = [probes[i : i + 2] for i in range(0, len(probes), 2)]  # cloze and question of one fact
    free = [pair for pair in pairs if not any(p.prompt in skip for p in pair)]
    n_facts = min(len(free), (n + 1) // 2)
    picked = [free[int(i * len(free) / n_facts)] for i in range(n_facts)] if n_facts else []
    return [f"{p.prompt} {p.answer}" for pair in picked for p in pair][:n]


def dev_known_probes(world: World, lm: LocalLanguageModel, n: int = 50, avoid: Sequence[str] = ()) -> list[Probe]:
    """``known_train`` probes of up to ``n`` KNOWN facts for choosing settings, none of whose prompts is in ``avoid``.

    The facts are evenly spaced, offset by half a step from the world check's sample (whose ``limit``-fact
    spread starts at the first fact), and a fact is dropped whole when either of its probes' prompts, or a
    text starting with one, is in ``avoid`` (the bench's probes and the KL inputs, which carry their answers).
    """
    skip = tuple(avoid)
    probes = [p for p in build_probes(world, lm.prompt_format) if p.metric == "known_train"]
    pairs = [probes[i : i + 2] for i in range(0, len(probes), 2)]  # cloze and question of one fact
    step = max(1, len(pairs) // n)
    picked = [pair for pair in pairs[step // 2 :: step] if not any(t.startswith(p.prompt) for p in pair for t in skip)]
    return [p for pair in picked[:n] for p in pair]


def world_stats(world: World, lm: LocalLanguageModel, avoid: Sequence[str] = ()) -> dict[str, Any]:
    """DINM's preserved texts (``stats_corpus``, for ``nullspace_energy``): the world's documents (the corpus
    the other editors' key statistics come from) and every KNOWN fact's training question and cloze with its
    answer (:func:`benign_prompts`), a fact skipped whole when either prompt is in ``avoid`` (the measured
    probes): the statistics never see a fact whose recall is measured."""
    facts = benign_prompts(world, lm, 2 * len(world.facts), avoid=avoid)
    return {"stats_corpus": [d.text for d in world.documents] + facts}


def default_benign_prompts(lm: LocalLanguageModel, n: int = 48) -> list[str]:
    """:func:`benign_prompts` of the bundled reference world."""
    from eval.world._pipeline import DATA_DIR
    from eval.world._schema import load_world

    return benign_prompts(load_world(DATA_DIR), lm, n)


def default_dinm_inputs(lm: LocalLanguageModel, *, preserved: bool = False) -> dict[str, Any]:
    """DINM's editor arguments on the bundled reference world: the KL inputs (``corpus``,
    :func:`benign_prompts`) and, with ``preserved``, the preserved texts (``stats_corpus``,
    :func:`world_stats`; only ``nullspace_energy`` / ``anchor_weight`` read them, and building them costs
    about 0.8 s, so callers that leave those options off do not ask for them)."""
    from eval.world._pipeline import DATA_DIR
    from eval.world._schema import load_world

    world = load_world(DATA_DIR)
    stats = world_stats(world, lm) if preserved else {}
    return {"corpus": benign_prompts(world, lm), **stats}


def _case_inputs(lm: LocalLanguageModel, case: SafetyCase) -> dict[str, list[str]]:
    q = lm.prompt_format.question
    return {
        "ds": [q(case.adversarial_input)],
        "dg_onlyq": [q(case.only_q)],
        "dg_otherq": [q(x) for x in case.other_q],
        "dg_othera": [q(x) for x in case.other_a],
        "dg_otheraq": [q(x) for x in case.other_aq],
    }


def _safety_scores(
    lm: LocalLanguageModel, case: SafetyCase, judge: SafetyJudge, max_new_tokens: int
) -> tuple[dict[str, float], list[str]]:
    inputs = _case_inputs(lm, case)
    flat = [p for m in METRICS for p in inputs[m]]
    texts = [g.text for g in lm.generate(flat, max_new_tokens=max_new_tokens)]
    unsafe = iter(judge.is_unsafe(texts))
    scores = {m: sum(not next(unsafe) for _ in inputs[m]) / len(inputs[m]) for m in METRICS}
    return scores, texts


def _known_accuracy(lm: LocalLanguageModel, prompts: Sequence[str], answers: Sequence[str]) -> float:
    gens = lm.generate(list(prompts), max_new_tokens=24)
    return sum(exact_match(g.text, (a,)) for g, a in zip(gens, answers, strict=True)) / max(1, len(answers))


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / max(1, len(values)), 4)


def run_detox_bench(
    models: Sequence[tuple[str, LocalLanguageModel]],
    cases: Sequence[SafetyCase],
    world: World,
    judge: SafetyJudge,
    methods: Sequence[str] = ("dinm", "ft-l"),
    *,
    known_limit: int = 25,
    max_new_tokens: int = 48,
    progress: Callable[[int], None] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    known_probes: Sequence[Probe] | None = None,
) -> list[DetoxResult]:
    """Edit each case alone with each method on each model; one :class:`DetoxResult` per method and model.

    ``options`` maps a method to hyperparameter overrides (``{"dinm": {"lr": 1e-2}}``). ``known_probes``
    replaces the ``known_limit`` world-check probes as the known-accuracy measure (choosing settings on
    :func:`dev_known_probes`); DINM's KL inputs never include a measured fact. Every edit is rolled back
    before the next: each model ends bit-identical to how it started.

    Raises:
        InvalidEditError: no cases, or an unknown method (before any edit).
    """
    if not cases:
        raise InvalidEditError("detox-bench: no cases")
    results = []
    for method in methods:
        get_editor(method)  # an unknown name fails before any work
    for model_name, lm in models:
        probes = (
            list(known_probes)
            if known_probes is not None
            else [p for p in build_probes(world, lm.prompt_format, limit=known_limit) if p.metric == "known_train"]
        )
        k_prompts, k_answers = [p.prompt for p in probes], [p.answer for p in probes]
        known_before = _known_accuracy(lm, k_prompts, k_answers)
        before_scores, before_texts = [], []
        for case in cases:
            scores, texts = _safety_scores(lm, case, judge, max_new_tokens)
            before_scores.append(scores)
            before_texts += texts
        fluency_before = fluency(before_texts) or 0.0
        before = {m: _mean([s[m] for s in before_scores]) for m in METRICS}
        editors: dict[str, Editor] = {}
        documents = [d.text for d in world.documents]  # the key statistics' corpus (ROME, MEMIT, AlphaEdit)
        for m in methods:
            extra = dict((options or {}).get(m, {}))
            if m != "dinm":
                editors[m] = get_editor(m, **({"corpus": documents} | extra))
                continue
            editors[m] = editor = get_editor(m, **extra)
            if isinstance(editor, BaseEditor):  # DINM's KL inputs: facts outside the known probes
                n_benign = int(getattr(editor.hparams_for(lm), "n_benign", 48))
                kl_inputs = benign_prompts(world, lm, n_benign, avoid=k_prompts)
                editors[m] = get_editor(m, corpus=kl_inputs, **{**world_stats(world, lm, k_prompts), **extra})
        for method, editor in editors.items():
            after_scores, after_texts, known, seconds = [], [], [], []
            layers: Counter[str] = Counter()
            for case in cases:
                started = time.perf_counter()
                delta = editor.compute(lm, [detox_request(lm, case)])
                handle = editor.apply(lm, delta)
                seconds.append(time.perf_counter() - started)
                info: Any = getattr(delta, "info", {})
                edited = info.get("toxic_layer", info.get("layers"))
                layers[str(edited)] += 1
                try:
                    scores, texts = _safety_scores(lm, case, judge, max_new_tokens)
                    known.append(_known_accuracy(lm, k_prompts, k_answers))
                finally:
                    handle.rollback()
                after_scores.append(scores)
                after_texts += texts
                if progress is not None:
                    progress(1)
            results.append(
                DetoxResult(
                    method=method,
                    model=model_name,
                    **{m: _mean([s[m] for s in after_scores]) for m in METRICS},
                    known_accuracy_before=round(known_before, 4),
                    known_accuracy_after=_mean(known),
                    fluency_before=round(fluency_before, 4),
                    fluency_after=round(fluency(after_texts) or 0.0, 4),
                    seconds_per_edit=_mean(seconds),
                    n_cases=len(cases),
                    before=before,
                    toxic_layers=dict(sorted(layers.items())),
                )
            )
            logger.info("detox-bench %s on %s: %s", method, model_name, results[-1])
    return results
