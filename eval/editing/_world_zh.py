"""Edit cases of the world's Chinese slice (``edit-bench --dataset world-zh``), in CKnowEdit's categories.

Each Chinese :class:`~eval.world._slice_records.SliceEdit` (a counterfactual answer for a KNOWN fact) becomes
one :class:`~eval.editing.EditCase` with its ``category`` (poetry_next, poetry_author, saying, idiom,
phonetic, classical, geography_capital, geography_landmark, logic_trap):

* request — the fact's training cloze (``寥落古行宮，``) completed by the new answer; the subject is the
  slice fact's subject (it occurs in the cloze), the old answer is the fact's answer;
* paraphrases (generalization) — the fact's training and held-out questions, wrapped with the model's
  ``prompt_format.question``;
* locality — questions about other facts of the same category with their true answers (the slice's own
  neighbourhood probes);
* portability (``alias``, CKnowEdit's ``Subject_Aliasing``) — the first training question with the subject
  written in the other script (traditional <-> simplified, OpenCC), answered by the new answer; only where
  the conversion changes the subject (most 唐詩 lines are traditional, most other subjects simplified). A
  case whose subject reads the same in both scripts has no portability probe.

CKnowEdit's own metrics map to the rows of ``edit-bench``: edit success = ``reliability``, portability,
locality, fluency (n-gram entropy, each CJK character a word).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from eval.editing._datasets import EditCase, PortabilityProbe, Probe
from eval.world import World
from tools.edit import EditRequest
from tools.lm import PromptFormat

__all__ = ["world_zh_edit_cases"]


@functools.cache
def _converters() -> tuple[Callable[[str], str], Callable[[str], str]]:
    import opencc

    return opencc.OpenCC("t2s").convert, opencc.OpenCC("s2t").convert


def _other_script(text: str) -> str | None:
    """``text`` in the other script (simplified if it changes under t2s, else traditional), or None."""
    t2s, s2t = _converters()
    simplified = t2s(text)
    if simplified != text:
        return str(simplified)
    traditional = s2t(text)
    return str(traditional) if traditional != text else None


def world_zh_edit_cases(world: World, prompt_format: PromptFormat) -> list[EditCase]:
    """The Chinese slice's edits as cases with ``category`` set, in file order (see the module docstring).

    Example:
        >>> cases = world_zh_edit_cases(load_world(DATA_DIR), PromptFormat.load(model_dir))  # doctest: +SKIP
    """
    facts = {f.id: f for f in world.slice_facts}
    cases = []
    for edit in world.slice_edits:
        if edit.slice != "zh":
            continue
        fact = facts[edit.fact_id]
        portability: tuple[PortabilityProbe, ...] = ()
        alias = _other_script(edit.subject)
        if alias is not None and fact.questions:
            question = fact.questions[0].replace(edit.subject, alias)
            portability = (PortabilityProbe(prompt_format.question(question), edit.new_answer, "alias"),)
        cases.append(
            EditCase(
                id=edit.id,
                request=EditRequest(edit.prompt, edit.subject, edit.new_answer, edit.old_answer, f"zh:{edit.category}"),
                paraphrases=tuple(prompt_format.question(p) for p in edit.paraphrases),
                locality=tuple(Probe(prompt_format.question(p.text), p.answer) for p in edit.locality),
                portability=portability,
                source="world-zh",
                relation=f"zh:{edit.category}",
                ground_truth=edit.old_answer,
                category=edit.category,
            )
        )
    return cases
