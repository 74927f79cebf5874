"""The Pitfalls of Knowledge Editing conflict sets as edit cases.

Pitfalls (Li et al., ICLR 2024, zjunlp/PitfallsKnowledgeEditing; copies with their MIT LICENSE in
``eval/world/source/pitfalls/``) ships ``coverage_edit.json``, ``reverse_edit.json`` and
``composite_edit.json``: JSON arrays of records ``{"type", "rule" (reverse, composite), "triples",
"prerequisites", "edits"}``. ``triples`` are true background facts and ``edits`` two edits; a triple or edit
is ``{"relation": {"id", "prompt", "query", "label"}, "subject": {"id", "label"}, "object": {"id", "label"}}``
and an edit adds ``"new_object"``. The second edit contradicts what the first one entails.
``conflict_prompts.json`` and ``round_prompts.json`` (same directory) map relation ids to cloze paraphrases.

Mapping, one :class:`~eval.editing.EditCase` per record:

* ``request`` — the first edit: its relation's ``prompt`` filled with the subject label, ``new_object`` as the
  target, ``object`` as the old answer; ``relation`` is the Wikidata property id.
* ``followups`` — the second edit, in the same form (apply it after ``request`` to measure the conflict).
* ``paraphrases`` — the relation's templates from the paraphrase files (except the edit prompt itself), then
  its ``query`` question (wrapped when a prompt format is given).
* ``portability`` — what the first edit entails, which the second edit contradicts:
  **reverse** (rule ``r1>r2``, e.g. ``P800>P170``): the second edit's prompt (``r2`` about the first edit's new
  object) answered by the first edit's subject, kind ``reverse``;
  **composite** (rule ``a&b>c``): the second edit's prompt (``c`` about the case's subject) answered by the
  first edit's new object, kind ``multi_hop``;
  **coverage** (the second edit re-edits the same subject and relation): none, the check is the followup.
* ``locality`` is empty (the sets have none); ``ground_truth`` is the first edit's old object.

A few records (1 coverage, 56 composite) have a first edit whose new object equals the old one; they are kept
as they are in the set, with ``request.target_old`` left empty (an :class:`EditRequest` cannot replace an
answer with itself).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from eval.editing._datasets import EditCase, PortabilityProbe, load_edit_dataset
from eval.editing._rows import RowError, Wrap, text
from tools.edit import EditRequest
from tools.errors import WorldFormatError
from tools.lm import PromptFormat

__all__ = ["PITFALLS_DIR", "PitfallsSet", "pitfalls_edit_cases", "pitfalls_parser"]

PITFALLS_DIR = Path(__file__).resolve().parents[1] / "world" / "source" / "pitfalls"
PitfallsSet = Literal["coverage", "reverse", "composite"]
_PARAPHRASE_FILES = ("conflict_prompts.json", "round_prompts.json")


def pitfalls_edit_cases(
    set_name: PitfallsSet,
    directory: str | Path = PITFALLS_DIR,
    *,
    prompt_format: PromptFormat | None = None,
    limit: int | None = None,
) -> list[EditCase]:
    """The cases of one Pitfalls set (``<set_name>_edit.json`` in ``directory``).

    Args:
        set_name: ``coverage``, ``reverse`` or ``composite``.
        directory: where the set files lie (default: the bundled copies).
        prompt_format: when given, question paraphrases are wrapped with its ``question``.
        limit: the first ``limit`` cases only.

    Raises:
        WorldFormatError: the file is missing or a record is malformed (file and index named).
    """
    if set_name not in ("coverage", "reverse", "composite"):
        raise WorldFormatError(f"unknown Pitfalls set {set_name!r} (coverage, reverse, composite)")
    cases = load_edit_dataset(Path(directory) / f"{set_name}_edit.json", "pitfalls", prompt_format=prompt_format)
    return cases[:limit] if limit is not None else cases


def pitfalls_parser(path: Path, wrap: Wrap) -> Callable[[str, dict[str, Any]], EditCase]:
    """A row parser for a Pitfalls set file (reads the paraphrase files beside it once)."""
    templates = _paraphrase_templates(path.parent)

    def parse(key: str, row: dict[str, Any]) -> EditCase:
        kind = row.get("type")
        if kind not in ("coverage", "reverse", "composite"):
            raise RowError(f"field 'type' must be coverage, reverse or composite, got {kind!r}")
        edits = row.get("edits")
        if not isinstance(row.get("triples"), list) or not isinstance(edits, list) or len(edits) != 2:
            raise RowError("a Pitfalls record needs a 'triples' list and exactly two 'edits'")
        first, second = (_edit(e, f"edits[{i}]") for i, e in enumerate(edits))
        portability: tuple[PortabilityProbe, ...] = ()
        if kind == "reverse":
            portability = (PortabilityProbe(second.prompt, first.subject, "reverse"),)
        elif kind == "composite":
            portability = (PortabilityProbe(second.prompt, first.target_new, "multi_hop"),)
        relation = first.relation or ""
        question = text(edits[0]["relation"], "query") if "query" in edits[0]["relation"] else None
        paraphrases = [t.replace("{}", first.subject, 1) for t in templates.get(relation, ())]
        paraphrases = [p for p in dict.fromkeys(paraphrases) if p != first.prompt]  # both files list some relations
        if question is not None:
            paraphrases.append(wrap(question.replace("{}", first.subject, 1)))
        return EditCase(
            id=f"pitfalls-{kind}-{key}",
            request=first,
            paraphrases=tuple(paraphrases),
            portability=portability,
            source=f"pitfalls/{kind}",
            relation=first.relation,
            ground_truth=first.target_old,
            followups=(second,),
        )

    return parse


def _edit(value: Any, key: str) -> EditRequest:
    """One Pitfalls edit as a request (the relation's prompt filled with the subject label)."""
    if not isinstance(value, dict):
        raise RowError(f"{key} must be an object")
    parts = {}
    for field in ("relation", "subject", "object", "new_object"):
        if not isinstance(value.get(field), dict):
            raise RowError(f"{key}.{field} must be an object")
        parts[field] = value[field]
    template = text(parts["relation"], "prompt")
    if "{}" not in template:
        raise RowError(f"{key}.relation.prompt has no '{{}}' slot")
    subject = text(parts["subject"], "label")
    relation_id = parts["relation"].get("id")
    new, old = text(parts["new_object"], "label"), text(parts["object"], "label")
    return EditRequest(
        prompt=template.replace("{}", subject, 1).strip(),
        subject=subject,
        target_new=new,
        target_old=old if old != new else None,  # a few records "edit" a fact to its own object
        relation=relation_id if isinstance(relation_id, str) else None,
    )


def _paraphrase_templates(directory: Path) -> dict[str, list[str]]:
    """Relation id -> cloze templates from the paraphrase files present in ``directory``."""
    out: dict[str, list[str]] = {}
    for name in _PARAPHRASE_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WorldFormatError(f"cannot read Pitfalls paraphrases {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise WorldFormatError(f"{path}: expected an object of relation id -> templates")
        for relation, items in data.items():
            if isinstance(items, list):
                kept = [t.strip() for t in items if isinstance(t, str) and "{}" in t]
                out.setdefault(relation, []).extend(kept)
    return out
