"""Dev concept edits (for choosing settings) and the train-side definition prompts an editor may preserve.

**Dev edits** (:func:`dev_concept_cases`): the world's 117 test edits give each KNOWN concept a sibling's and a
distant concept's definition. Settings of ROME / MEMIT / AlphaEdit are chosen on *other* edits of the same
shape: the same KNOWN concepts taking the definition of another source concept, drawn with a different seed,
never a ``(concept, source)`` pair of the test edits; five locality prompts drawn the same way (other KNOWN
concepts' ``What is a <label>?``) and the same four paraphrase questions. They are not measured figures.

**Preserved prompts** (:func:`preserved_definition_prompts`): the definitions the world *trains* under, as
``(prompt, subject)`` pairs for an editor's preserved keys (``preserve_prompts`` of AlphaEdit, and of ROME with
``preserve_prompt_weight`` > 0, :func:`uses_preserved_prompts`): every KNOWN
concept's cloze ``A <label> is``, ``The word <label> means``, its statement ``A <label> is <definition>.`` and
(given the model's prompt format) its second training question answered, ``What is the definition of a
<label>?`` + the definition. The benchmark's locality prompts are the *first* training question ``What is a
<label>?`` (``questions[0]`` of the slice); it is never among the preserved prompts: it is not generated, and
any prompt that starts with a text in ``exclude`` (the bench's locality prompts, wrapped) is dropped. The
held-out phrasings (``How would you define ...``, ``What does the term ... mean?``) are never used. An editor
drops the prompts whose subject is the concept being edited (its own definition is meant to change).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from eval.concepts._cases import ConceptCase, InstanceProbe
from eval.editing import Probe
from tools.edit import EditRequest
from tools.errors import InvalidInputError, WorldFormatError
from tools.lm import PromptFormat

__all__ = ["dev_concept_cases", "preserved_definition_prompts", "uses_preserved_prompts"]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise WorldFormatError(f"cannot read {path}: {exc}") from exc


def _article(label: str) -> str:
    return "an" if label[:1].lower() in "aeiou" else "a"


def _world(data_dir: str | Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    root = Path(data_dir)
    concepts = {str(r["label"]): r for r in _jsonl(root / "concepts.jsonl")}
    edits = [r for r in _jsonl(root / "slice_edits.jsonl") if r.get("slice") == "concepts"]
    return concepts, edits


def dev_concept_cases(
    data_dir: str | Path, prompt_format: PromptFormat, n: int = 40, *, seed: int = 1, n_locality: int = 5
) -> list[ConceptCase]:
    """``n`` dev definition edits of the world's KNOWN concepts, disjoint from its test edits (module docstring).

    Raises:
        InvalidInputError: ``n < 1``.
        WorldFormatError: missing or malformed world files.
    """
    if n < 1:
        raise InvalidInputError(f"n must be >= 1, got {n}")
    concepts, edits = _world(data_dir)
    by_id = {str(r["id"]): r for r in concepts.values()}
    known = sorted({str(e["subject"]) for e in edits})
    used = {(str(e["subject"]), str(by_id[str(e["source"])]["label"])) for e in edits}
    rng = random.Random(f"dev-concept-edits:{seed}")
    pairs = [(c, s) for c in known for s in sorted(concepts) if s != c and (c, s) not in used]
    rng.shuffle(pairs)
    out: list[ConceptCase] = []
    for concept, source in pairs[:n]:
        row, a = concepts[concept], _article(concept)
        others = [c for c in known if c != concept]
        local = rng.sample(others, k=min(n_locality, len(others)))
        same_root = row.get("parent") == concepts[source].get("parent") and row.get("parent")
        out.append(
            ConceptCase(
                id=f"dev{len(out):04d}",
                request=EditRequest(
                    f"{a.capitalize()} {concept} is", concept, str(concepts[source]["definition"]), row["definition"]
                ),
                paraphrases=tuple(
                    prompt_format.question(q)
                    for q in (
                        f"What is {a} {concept}?",
                        f"What is the definition of {a} {concept}?",
                        f"How would you define {a} {concept}?",
                        f"What does the term {concept} mean?",
                    )
                ),
                locality=tuple(
                    Probe(prompt_format.question(f"What is {_article(c)} {c}?"), str(concepts[c]["definition"]))
                    for c in local
                ),
                instances=tuple(
                    InstanceProbe(prompt_format.question(f"Is {e} {a} {concept}?"), e, answer)
                    for members, answer in ((row["instances"], "yes"), (row["non_instances"], "no"))
                    for e in members
                ),
                kind="sibling" if same_root else "other",
                ground_truth=str(row["definition"]),
                source="world-dev",
            )
        )
    return out


def uses_preserved_prompts(editor: str, hparams: Mapping[str, Any]) -> bool:
    """Whether ``editor`` with ``hparams`` reads ``preserve_prompts``: AlphaEdit always, ROME when
    ``preserve_prompt_weight`` > 0 (its key covariance takes them in, issue 22) or ``preserve_output_weight`` > 0
    (its value fit keeps their outputs); never when they are given."""
    if "preserve_prompts" in hparams:
        return False
    if editor == "alphaedit":
        return True
    weights = (float(hparams.get(k, 0.0)) for k in ("preserve_prompt_weight", "preserve_output_weight"))
    return editor == "rome" and any(w > 0.0 for w in weights)


def preserved_definition_prompts(
    data_dir: str | Path,
    exclude: Iterable[str] = (),
    prompt_format: PromptFormat | None = None,
    *,
    question_form: bool = False,
) -> tuple[tuple[str, str], ...]:
    """``(prompt, subject)`` of every KNOWN concept's train-side definition prompts, none starting with ``exclude``.

    With ``prompt_format``, also the second training question with its answer, ``Q: What is the definition of
    a <label>?`` + `` <definition>`` in that format (the locality prompts ask the first, ``What is a <label>?``).
    With ``question_form`` (and ``prompt_format``) also the measured question's form, unanswered, of the concepts
    that are *not* KNOWN (no edit's subject: ``Q: What is a landmark in India?\nA:``, the 14 held-out concepts):
    the locality prompts of the test and dev edits are always KNOWN concepts' (:func:`dev_concept_cases`,
    ``world_concept_cases``), so these are never one of them, and ``exclude`` still applies. Their definitions are
    never written (held out). On GPT-2's dev edits they change nothing at two decimals (README, issue 22).

    Raises:
        WorldFormatError: missing or malformed world files.
    """
    concepts, edits = _world(data_dir)
    banned = tuple(t.strip() for t in exclude if t.strip())
    out: list[tuple[str, str]] = []
    for label in sorted({str(e["subject"]) for e in edits}):
        a, definition = _article(label), concepts[label]["definition"]
        prompts = [
            f"{a.capitalize()} {label} is",
            f"The word {label} means",
            f"{a.capitalize()} {label} is {definition}.",
        ]
        if prompt_format is not None:
            prompts.append(f"{prompt_format.question(f'What is the definition of {a} {label}?')} {definition}")
        out.extend((p, label) for p in prompts if not p.strip().startswith(banned))
    if question_form and prompt_format is not None:
        known = {str(e["subject"]) for e in edits}
        for label in sorted(set(concepts) - known):
            prompt = prompt_format.question(f"What is {_article(label)} {label}?")
            if not prompt.strip().startswith(banned):
                out.append((prompt, label))
    return tuple(out)
