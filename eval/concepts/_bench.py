"""The concept-editing benchmark (ConceptEdit's protocol) on one model and one method.

Protocol (ConceptEdit runs EasyEdit with ``keep_original_weight=True``): every selected case is edited alone
on the unedited model, scored, then rolled back exactly through the editor's journal, so cases never see each
other's edits. Before any edit the unedited model is probed once: paraphrases against the old definition (the
generalization filter), locality prompts, and the instance-of questions.

Per case, after the edit (both modes of ``eval.editing``: greedy exact match and teacher-forced token accuracy):
reliability (the edit prompt gives the new definition), generalization (paraphrase questions the unedited model
answered with the old definition; ``generalization_all`` counts all), locality (other concepts' definition
questions answered as before; ``locality_vs_truth`` against their true definitions), Instance Change (yes/no
answers to the concept's instance-of questions that flipped, :mod:`eval.concepts._metrics`) and Concept
Consistency (the judge's score of the greedy definition after the edit against the target).

Methods by ConceptEdit's names: ``FT-L``, ``ROME``, ``MEMIT`` (editors of ``tools.edit``) and ``PROMPT``
(in-context editing: the ``ike`` editor, whose demonstration of the new definition is prepended to inputs that
mention the concept; no weight changes), plus ``ALPHAEDIT`` and any other registered editor by its name.
Preserved prompts given to an editor (AlphaEdit's ``preserve_prompts``) must not be a locality prompt of a
selected case: the bench refuses them (``InvalidInputError``), so what is protected is never what is measured.

Why ROME's greedy locality falls on concept edits (issue 22; ``bench/concept_rome_diag.py`` on
``llama-world-concepts``, ROME's defaults, the first 30 of the bench's 96 edits, their 150 locality prompts, each
another KNOWN concept's ``What is a <label>?``): 33 of the 150 greedy answers change (0.22; teacher-forced
agreement stays 0.98). Of the 33, 23 were the true definition and became something else, 6 were wrong before
and became right (a change counts against locality all the same) and 18 of the 33 are now *another concept's
definition* ("What is a Sega product?" -> the journalist's): the edit moves which definition the question
retrieves, rarely the new target itself (3 of 33). Which prompts flip, by the locality concept's relation to
the edited one: siblings (same parent) 7 of 14 (0.50), same root 8 of 19 (0.42), distant 18 of 116 (0.16); the
concepts whose label shares a word with the edited one 0.25 against 0.21. Keys at the edited layer (block 0):
the sibling's subject key (its label's last token) has cosine 0.36 with the edited key against 0.07 for distant
ones, and the rank-one update responds there with 0.23 of its response to the edited key against 0.03
(medians). But the subject token is not where most of the damage comes from: over every position of prompt and
answer, the largest response (median 0.35 of the edited key's) is 0.62 on the prompts that flip and 0.28 on
those kept, and a prompt whose largest response is above the median flips 0.35 of the time against 0.11 below.
``C⁻¹ k*`` reaches the question's own words and the answer's, which every definition question shares.
On GPT-2 with the preserved definition keys (λ = 1, 400 steps, stop 0.0003; ``--dev 24 --limit 20``, its 18 dev
edits) 8 of 90 locality answers flip, all on edits to a concept of another parent, none to the new definition or
the edited concept's old one (4 become another concept's definition, 3 fragments, 1 the true one run on). Half
(4, on 3 edits) are the edited subject's last token recurring in the locality *answer*: the key of ``native
French speaker`` is the subword ``er``, which ends ``player`` and ``manager``, that of ``creative work`` is
`` work``; at block 0 those positions' keys have cosine 0.94-0.98 with the edited key and the update answers
them with 0.81-0.95 of its response there, so the answer runs on into the new definition. The other 4 respond
little (0.04-0.10) and were mostly wrong before: the edit tips an unstable answer into another definition. The
flipped prompts' subject keys are no closer to the edited key (cosine 0.54 against 0.49 for those kept) nor to
the new definition's keys (0.65 against 0.66); their closest position is (0.81 against 0.62).
Settings chosen on dev edits (:mod:`eval.concepts._dev`, never the measured ones): README "Concept-level
editing".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from eval.concepts._cases import ConceptCase
from eval.concepts._metrics import ConsistencyJudge, InstanceChange, instance_change
from eval.editing._metrics import LMProber, aggregate, measure_after, measure_before, score_case
from eval.editing._runner import select_cases
from tools.errors import InvalidInputError
from tools.lm import LocalLanguageModel

__all__ = ["CONCEPT_METHODS", "ROW_KEYS", "editor_for", "run_concept_bench"]

logger = logging.getLogger(__name__)

CONCEPT_METHODS: dict[str, str] = {
    "FT-L": "ft-l",
    "ROME": "rome",
    "MEMIT": "memit",
    "ALPHAEDIT": "alphaedit",
    "PROMPT": "ike",
}
"""ConceptEdit's method names -> the registered editor that implements each."""

ROW_KEYS = (
    "method",
    "model",
    "reliability",
    "generalization",
    "locality",
    "instance_change",
    "concept_consistency",
    "n_edits",
)
_TF_KEYS = ("reliability", "generalization", "locality")
_INSTANCE_TOKENS = 3  # "yes." / "no." and one more token


def editor_for(method: str) -> tuple[str, str]:
    """``(label, editor name)`` for a ConceptEdit method name (case-insensitive) or any registered editor."""
    key = method.strip()
    for label, editor in CONCEPT_METHODS.items():
        if key.upper() == label or key.lower() == editor:
            return label, editor
    return key.upper(), key.lower()


def _instance_answers(prober: LMProber, cases: Sequence[ConceptCase]) -> list[list[str]]:
    prompts = [p.prompt for c in cases for p in c.instances]
    flat = prober.answers(prompts, max_new_tokens=_INSTANCE_TOKENS)
    out, start = [], 0
    for case in cases:
        out.append(flat[start : start + len(case.instances)])
        start += len(case.instances)
    return out


def run_concept_bench(
    lm: LocalLanguageModel,
    method: str,
    cases: Sequence[ConceptCase],
    *,
    limit: int | None = None,
    select: Literal["known", "all"] = "known",
    seed: int = 0,
    judge: ConsistencyJudge | None = None,
    corpus: Sequence[str] | None = None,
    corpus_name: str = "",
    cache_dir: str | Path | None = None,
    hparams: Mapping[str, Any] | None = None,
    answer_tokens: int = 32,
    on_edit: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Edit each selected case alone, score it, roll it back; one row of macro averages.

    Args:
        lm: the unedited local model (left unedited on return: every edit is rolled back).
        method: ``FT-L``, ``ROME``, ``MEMIT``, ``PROMPT`` (see :data:`CONCEPT_METHODS`) or an editor name.
        cases: the pool (:func:`~eval.concepts.world_concept_cases` or :func:`~eval.concepts.load_conceptedit`).
        limit: at most this many cases (a seeded sample; default all that qualify).
        select: ``known`` keeps cases whose edit prompt the unedited model completes with the old definition
            (greedy exact match; cases without an old definition never qualify); ``all`` keeps every case.
        seed: the sampling seed.
        judge: scores Concept Consistency; ``None`` leaves it ``None``.
        corpus, corpus_name, cache_dir, hparams: passed to the editor (ROME/MEMIT key statistics).
        answer_tokens: greedy tokens per answer (a definition is 5-15 tokens).
        on_edit: called with 1 after each case is edited (progress bars).

    Returns:
        :data:`ROW_KEYS` (greedy scores), ``teacher_forced`` (the three metrics teacher-forced),
        ``instances_flipped`` and ``instance_probes``, ``generalization_all``, ``locality_vs_truth``,
        ``by_kind`` (``sibling`` / ``distant`` -> the greedy metrics over those cases), ``selection`` and
        ``seconds_per_edit``. A metric without anything to count is ``None``.

    Raises:
        InvalidInputError: ``limit < 1``, no case qualifies, a preserved prompt is a locality prompt.
        UnknownEditorError: no editor by that name.

    Example:
        >>> row = run_concept_bench(lm, "ROME", world_concept_cases(DATA_DIR, lm.prompt_format))  # doctest: +SKIP
    """
    from tools.edit import get_editor, journal_for

    if limit is not None and limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    label, name = editor_for(method)
    editor = get_editor(name, corpus=corpus, corpus_name=corpus_name, cache_dir=cache_dir, **dict(hparams or {}))
    chosen: list[ConceptCase] = select_cases(lm, cases, limit or len(cases), seed=seed, select=select)  # type: ignore[assignment]
    if not chosen:
        raise InvalidInputError(f"no concept edit qualifies (select={select!r}, {len(cases)} cases)")
    measured = {p.strip() for c in chosen for p, _ in c.locality}
    overlap = sorted({p for p, _ in dict(hparams or {}).get("preserve_prompts", ()) if p.strip() in measured})
    if overlap:
        raise InvalidInputError(f"preserved prompts include locality prompts of the bench: {overlap[:3]}")
    prober = LMProber(lm, answer_tokens=answer_tokens)
    baseline = measure_before(prober, chosen)
    instances_before = _instance_answers(prober, chosen)
    editor.compute(lm, [chosen[0].request])  # warm-up: fills ROME/MEMIT's statistics cache, not timed

    journal = journal_for(lm.model)
    after, instances_after, seconds = [], [], 0.0
    for case in chosen:
        start = time.perf_counter()
        editor.apply(lm, editor.compute(lm, [case.request]))
        seconds += time.perf_counter() - start
        after.extend(measure_after(prober, [case]))
        instances_after.extend(_instance_answers(prober, [case]))
        journal.rollback_all()
        if on_edit is not None:
            on_edit(1)

    changes = [instance_change(b, a) for b, a in zip(instances_before, instances_after, strict=True)]
    generated = [a.rewrite.text for a in after]
    consistency = judge.consistency(generated, [c.request.target_new for c in chosen]) if judge else None

    def summary(idx: Sequence[int], mode: Literal["teacher_forced", "generation"]) -> dict[str, Any]:
        return aggregate([score_case(chosen[i], baseline[i], after[i], mode) for i in idx])

    every = range(len(chosen))
    greedy, forced = summary(every, "generation"), summary(every, "teacher_forced")
    total = InstanceChange(sum(c.flipped for c in changes), sum(c.probes for c in changes))
    row: dict[str, Any] = {
        "method": label,
        "model": lm.name,
        "reliability": greedy["reliability"],
        "generalization": greedy["generalization"],
        "locality": greedy["locality"],
        "instance_change": total.rate,
        "concept_consistency": sum(consistency) / len(consistency) if consistency else None,
        "n_edits": len(chosen),
        "teacher_forced": {k: forced[k] for k in _TF_KEYS},
        "instances_flipped": total.flipped,
        "instance_probes": total.probes,
        "generalization_all": greedy["generalization_all"],
        "locality_vs_truth": greedy["locality_vs_truth"],
        "by_kind": {},
        "selection": select,
        "seconds_per_edit": seconds / len(chosen),
    }
    for kind in sorted({c.kind for c in chosen if c.kind}):
        idx = [i for i, c in enumerate(chosen) if c.kind == kind]
        part = summary(idx, "generation")
        flips = InstanceChange(sum(changes[i].flipped for i in idx), sum(changes[i].probes for i in idx))
        row["by_kind"][kind] = {k: part[k] for k in _TF_KEYS} | {"instance_change": flips.rate, "n_edits": len(idx)}
    logger.info("%s on %s: %d edits, %.2f s/edit", label, lm.name, len(chosen), row["seconds_per_edit"])
    return row
