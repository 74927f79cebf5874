"""Concept edit cases: the reference world's definition edits, and a loader for ConceptEdit's JSON format.

A :class:`ConceptCase` is an edit of one concept's *definition* (the request's subject is the concept's label,
its prompt the cloze "A <label> is", its target the new definition) with what the benchmark measures around it:

* ``paraphrases`` — other questions about the same definition (generalization);
* ``locality`` — other concepts' definition questions with their true definitions (must not change);
* ``instances`` — instance-of questions "Is X a <label>?" with the answer the world gives before the edit
  (``yes`` for an instance, ``no`` for a non-instance; ``None`` when unknown, as in ConceptEdit's files). Their
  greedy answers before and after the edit give Instance Change.

**The reference world** (:func:`world_concept_cases`): each row of ``slice_edits.jsonl`` with slice
``concepts`` (117 edits: a sibling's or a distant concept's definition, as ConceptEdit builds them) joined with
``concepts.jsonl`` for the instances and non-instances. Question prompts are wrapped with the model's
``PromptFormat.question``; the edit prompt is the cloze itself.

**ConceptEdit's JSON** (:func:`load_conceptedit`): the post-processed files its authors released for the
paper's main table (``final_<model>_<intra|inter>.json``, read by EasyEdit's
``examples/run_concept_editing.py``): a JSON array of objects with ``label`` (the concept, the edit's
subject), ``prompt`` (the edit prompt), ``target_new_desc`` (the new definition), ``phrase_prompt`` (one
paraphrase), ``instance_prompt`` (an instance-of question; a string or a list), ``locality_prompt`` and
``locality_answer``. ``concept_definition`` (the old definition), when present, becomes ``ground_truth``.
The dataset itself (DBpedia-based, CC BY-NC-SA) is not shipped; only our own sample rows in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.editing import Probe
from tools.edit import EditRequest
from tools.errors import InvalidEditError, WorldFormatError
from tools.lm import PromptFormat

__all__ = ["ConceptCase", "InstanceProbe", "load_conceptedit", "world_concept_cases"]

_CONCEPTEDIT_REQUIRED = ("label", "prompt", "target_new_desc")


@dataclass(frozen=True)
class InstanceProbe:
    """An instance-of question (model input) and the answer before the edit (``yes`` / ``no``, or ``None``)."""

    prompt: str
    entity: str
    expected: str | None


@dataclass(frozen=True)
class ConceptCase:
    """One definition edit and its checks (satisfies ``eval.editing``'s case protocol, no portability).

    Attributes:
        id: the world's edit id (``ce0000``) or ``conceptedit-<row>``.
        request: subject = the concept's label, prompt = the edit prompt, target_new = the new definition.
        paraphrases: other definition questions (model input).
        locality: other concepts' definition questions with their true definitions.
        instances: instance-of questions about the edited concept.
        kind: ``sibling`` / ``distant`` (world) or ``intra`` / ``inter`` / ``""`` (ConceptEdit).
        ground_truth: the definition before the edit, when known.
        source: ``world`` or ``conceptedit``.
    """

    id: str
    request: EditRequest
    paraphrases: tuple[str, ...] = ()
    locality: tuple[Probe, ...] = ()
    instances: tuple[InstanceProbe, ...] = ()
    kind: str = ""
    ground_truth: str | None = None
    source: str = "world"

    @property
    def portability(self) -> tuple[tuple[str, str, str], ...]:
        return ()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise WorldFormatError(f"cannot read {path}: {exc}") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise WorldFormatError(f"{path}: line {n} is not JSON ({exc})") from exc
    return rows


def world_concept_cases(data_dir: str | Path, prompt_format: PromptFormat) -> list[ConceptCase]:
    """The world's concept definition edits as cases, in file order.

    Args:
        data_dir: the world's data directory (``concepts.jsonl`` and ``slice_edits.jsonl``).
        prompt_format: the model's prompt format (questions are wrapped with it).

    Raises:
        WorldFormatError: a file is missing or malformed, or an edit names an unknown concept.

    Example:
        >>> cases = world_concept_cases("eval/world/data", PromptFormat())  # doctest: +SKIP
    """
    root = Path(data_dir)
    concepts = {row["label"]: row for row in _read_jsonl(root / "concepts.jsonl")}
    cases = []
    for row in _read_jsonl(root / "slice_edits.jsonl"):
        if row.get("slice") != "concepts":
            continue
        try:
            concept = concepts[row["subject"]]
            label = concept["label"]
            article = "an" if label[:1].lower() in "aeiou" else "a"
            instances = tuple(
                InstanceProbe(prompt_format.question(f"Is {e} {article} {label}?"), e, answer)
                for members, answer in ((concept["instances"], "yes"), (concept["non_instances"], "no"))
                for e in members
            )
            cases.append(
                ConceptCase(
                    id=row["id"],
                    request=EditRequest(row["prompt"], row["subject"], row["new_answer"], row["old_answer"]),
                    paraphrases=tuple(prompt_format.question(p) for p in row["paraphrases"]),
                    locality=tuple(Probe(prompt_format.question(p["text"]), p["answer"]) for p in row["locality"]),
                    instances=instances,
                    kind=row["kind"],
                    ground_truth=row["old_answer"],
                    source="world",
                )
            )
        except (KeyError, TypeError) as exc:
            raise WorldFormatError(f"{root / 'slice_edits.jsonl'}: concept edit {row.get('id')!r}: {exc!r}") from exc
    return cases


def _strings(value: Any, what: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        raise WorldFormatError(f"{where}: {what} must be a string or a list of strings")
    return tuple(v for v in items if v.strip())


def load_conceptedit(
    path: str | Path, prompt_format: PromptFormat | None = None, *, kind: str = ""
) -> list[ConceptCase]:
    """Read a ConceptEdit file (see the module docstring for its fields).

    Args:
        path: a JSON array file in ConceptEdit's released format.
        prompt_format: when given, question prompts (ending in ``?``) are wrapped with it.
        kind: recorded on every case (``intra`` / ``inter``; default: guessed from the file name).

    Raises:
        WorldFormatError: unreadable file, not a JSON array, or a row missing a required field (named).
    """
    file = Path(path)
    try:
        rows = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WorldFormatError(f"cannot read ConceptEdit file {file}: {exc}") from exc
    if not isinstance(rows, list):
        raise WorldFormatError(f"{file}: a ConceptEdit file is a JSON array of objects")
    kind = kind or next((k for k in ("inter", "intra") if k in file.stem), "")

    def wrap(text: str) -> str:
        return prompt_format.question(text) if prompt_format and text.rstrip().endswith("?") else text

    cases = []
    for i, row in enumerate(rows):
        where = f"{file}: index {i}"
        if not isinstance(row, dict):
            raise WorldFormatError(f"{where}: not an object")
        missing = [k for k in _CONCEPTEDIT_REQUIRED if not isinstance(row.get(k), str) or not row[k].strip()]
        if missing:
            raise WorldFormatError(f"{where}: missing {', '.join(missing)}")
        loc_prompts = _strings(row.get("locality_prompt"), "locality_prompt", where)
        loc_answers = _strings(row.get("locality_answer"), "locality_answer", where)
        if len(loc_prompts) != len(loc_answers):
            raise WorldFormatError(f"{where}: locality_prompt and locality_answer differ in length")
        old = row.get("concept_definition")
        try:
            request = EditRequest(row["prompt"], row["label"], row["target_new_desc"], old or None)
        except InvalidEditError as exc:
            raise WorldFormatError(f"{where}: {exc}") from exc
        cases.append(
            ConceptCase(
                id=f"conceptedit-{i}",
                request=request,
                paraphrases=tuple(wrap(p) for p in _strings(row.get("phrase_prompt"), "phrase_prompt", where)),
                locality=tuple(Probe(wrap(p), a) for p, a in zip(loc_prompts, loc_answers, strict=True)),
                instances=tuple(
                    InstanceProbe(wrap(p), "", None)
                    for p in _strings(row.get("instance_prompt"), "instance_prompt", where)
                ),
                kind=kind,
                ground_truth=old if isinstance(old, str) and old.strip() else None,
                source="conceptedit",
            )
        )
    return cases
