"""Records of the reference world and their on-disk format.

A world is a directory of JSON Lines files, one record per line, UTF-8, plus ``manifest.json``:

========================  ===============================================================================
file                      record
========================  ===============================================================================
``relations.jsonl``       :class:`Relation` — id, label, functional, inverse, training templates
                          (``cloze``, ``questions``), ``statements`` for documents, ``heldout`` templates
``facts.jsonl``           :class:`Fact` — id, relation, subject, object, split (``known`` | ``unknown``)
``edits.jsonl``           :class:`Edit` — a counterfactual request on a KNOWN fact, with paraphrase and
                          neighbourhood prompts
``questions.jsonl``       :class:`Question` — kind (``known`` | ``unknown`` | ``edit`` | ``unanswerable``),
                          split (``dev`` | ``test``), text, gold answers (empty for unanswerable)
``documents.jsonl``       :class:`Document` — a natural sentence stating one fact (every KNOWN and UNKNOWN)
``manifest.json``         seed, counts, format version
========================  ===============================================================================

Concepts and the Chinese slice add their own files (:mod:`eval.world._slice_records`); a world without them
loads with those slices empty.

Templates hold one ``{}`` for the subject. :func:`load_world` validates every record and raises
:class:`~tools.errors.WorldFormatError` naming the file and line of the first bad one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from eval.world._slice_records import Concept, Prompted, SliceEdit, SliceFact
from tools.errors import WorldFormatError

FORMAT_VERSION = 1
FactSplit = Literal["known", "unknown"]
QuestionKind = Literal["known", "unknown", "edit", "unanswerable"]
QuestionSplit = Literal["dev", "test"]
TemplateKind = Literal["train", "heldout", "none"]


@dataclass(frozen=True)
class Relation:
    """A relation with its templates.

    ``cloze`` and ``questions`` are used in all training; ``paraphrases`` (cloze and question phrasings) from
    the second training phase on; ``heldout`` never.
    """

    id: str
    label: str
    functional: bool
    cloze: tuple[str, ...]
    questions: tuple[str, ...]
    statements: tuple[str, ...]
    heldout: tuple[str, ...]
    inverse: str | None = None
    source: str = ""
    paraphrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fact:
    """One (subject, relation, object) triple of the world."""

    id: str
    relation: str
    subject: str
    object: str
    split: FactSplit


@dataclass(frozen=True)
class Prompt:
    """A cloze or question prompt with the answer expected after it."""

    text: str
    answer: str


@dataclass(frozen=True)
class Edit:
    """A counterfactual edit request on a KNOWN fact: ``subject`` + ``relation`` now map to ``new_object``.

    ``prompt`` is the edit prompt (a training cloze template), ``paraphrases`` are other phrasings of the same
    fact (held-out templates first), ``neighbourhood`` are prompts about other subjects of the same relation
    whose answers must not change.
    """

    id: str
    fact_id: str
    relation: str
    subject: str
    old_object: str
    new_object: str
    prompt: str
    paraphrases: tuple[str, ...]
    neighbourhood: tuple[Prompt, ...]


@dataclass(frozen=True)
class Question:
    """A question of the world. ``answers`` is empty exactly when ``kind == "unanswerable"``."""

    id: str
    kind: QuestionKind
    split: QuestionSplit
    text: str
    answers: tuple[str, ...]
    relation: str
    subject: str
    fact_id: str | None = None
    edit_id: str | None = None
    template: TemplateKind = "train"


@dataclass(frozen=True)
class Document:
    """A sentence of the corpus stating one fact."""

    id: str
    fact_id: str
    text: str


@dataclass(frozen=True)
class World:
    """A loaded reference world. Lists keep file order; lookups are built on demand."""

    relations: tuple[Relation, ...]
    facts: tuple[Fact, ...]
    edits: tuple[Edit, ...]
    questions: tuple[Question, ...]
    documents: tuple[Document, ...]
    manifest: dict[str, Any] = field(default_factory=dict, compare=False)
    concepts: tuple[Concept, ...] = ()
    slice_facts: tuple[SliceFact, ...] = ()
    slice_edits: tuple[SliceEdit, ...] = ()
    slice_questions: tuple[Question, ...] = ()

    def relation(self, relation_id: str) -> Relation:
        """Return the relation with this id; raises ``KeyError`` if absent."""
        for rel in self.relations:
            if rel.id == relation_id:
                return rel
        raise KeyError(relation_id)

    def facts_in(self, split: FactSplit) -> list[Fact]:
        """Facts of one split, in file order."""
        return [f for f in self.facts if f.split == split]

    def questions_in(self, split: QuestionSplit, kind: QuestionKind | None = None) -> list[Question]:
        """Questions of one split (and optionally one kind), in file order."""
        return [q for q in self.questions if q.split == split and (kind is None or q.kind == kind)]


_FILES: dict[str, type] = {
    "relations": Relation,
    "facts": Fact,
    "edits": Edit,
    "questions": Question,
    "documents": Document,
    "concepts": Concept,
    "slice_facts": SliceFact,
    "slice_edits": SliceEdit,
    "slice_questions": Question,
}
_OPTIONAL = frozenset({"concepts", "slice_facts", "slice_edits", "slice_questions"})  # absent: slice empty
T = TypeVar("T")


def write_world(world: World, directory: Path) -> None:
    """Write ``world`` to ``directory`` in the format above (files are replaced whole)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        records: Iterable[Any] = getattr(world, name)
        if name in _OPTIONAL and not records:
            continue
        lines = [json.dumps(asdict(r), ensure_ascii=False, sort_keys=True) for r in records]
        tmp = directory / f"{name}.jsonl.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(directory / f"{name}.jsonl")
    if world.concepts:
        from eval.world._concepts import concepts_turtle  # the concept module builds on this one

        (directory / "concepts.ttl").write_text(concepts_turtle(world.concepts), encoding="utf-8")
    manifest = dict(world.manifest, format_version=FORMAT_VERSION)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_world(directory: Path | str) -> World:
    """Load and validate a world directory.

    Raises:
        WorldFormatError: a file is missing, a line is not JSON, or a record has missing, extra or
            ill-typed fields (the message names file and line).
    """
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise WorldFormatError(f"{directory} is not a world directory (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise WorldFormatError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r} != {FORMAT_VERSION}"
        )
    loaded: dict[str, Any] = {
        name: tuple(_read(directory / f"{name}.jsonl", cls))
        for name, cls in _FILES.items()
        if name not in _OPTIONAL or (directory / f"{name}.jsonl").is_file()
    }
    world = World(manifest=manifest, **loaded)
    _check_references(world)
    return world


def _read(path: Path, cls: type[T]) -> Iterator[T]:
    if not path.is_file():
        raise WorldFormatError(f"missing world file {path}")
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield _record(cls, json.loads(line))
            except (ValueError, TypeError) as exc:
                raise WorldFormatError(f"{path.name} line {lineno}: {exc}") from exc


def _record(cls: type[T], data: Any) -> T:
    if not isinstance(data, dict):
        raise TypeError("a record must be a JSON object")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    extra = set(data) - names
    if extra:
        raise TypeError(f"unknown field(s) {sorted(extra)} for {cls.__name__}")
    values = {}
    for key, value in data.items():
        if key == "neighbourhood":
            value = tuple(Prompt(**p) for p in value)
        elif key == "locality":
            value = tuple(Prompted(**p) for p in value)
        elif isinstance(value, list):
            value = tuple(value)
        values[key] = value
    record = cls(**values)
    for key in ("id", "text", "subject", "relation"):
        if key in names and not isinstance(getattr(record, key), str):
            raise TypeError(f"field {key!r} must be a string")
    return record


def _check_references(world: World) -> None:
    relation_ids = {r.id for r in world.relations}
    fact_ids = {f.id for f in world.facts}
    for fact in world.facts:
        if fact.relation not in relation_ids:
            raise WorldFormatError(f"facts.jsonl: fact {fact.id} names unknown relation {fact.relation!r}")
    for q in world.questions:
        if bool(q.answers) == (q.kind == "unanswerable"):
            raise WorldFormatError(f"questions.jsonl: question {q.id} of kind {q.kind} has answers={q.answers!r}")
    for doc in world.documents:
        if doc.fact_id not in fact_ids:
            raise WorldFormatError(f"documents.jsonl: document {doc.id} names unknown fact {doc.fact_id!r}")
