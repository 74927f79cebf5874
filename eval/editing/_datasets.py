"""Edit cases: one record for every editing dataset, and loaders for the world and the EasyEdit formats.

An :class:`EditCase` is a request plus what is measured around it: paraphrases (generalization), locality
probes whose answers must not change, and portability probes whose answers should follow from the edit.

**The reference world** (:func:`world_edit_cases`): each of the world's EDITS becomes one case. Paraphrases
are the edit's paraphrase prompts (questions, the ones ending in ``?``, wrapped with the model's
``prompt_format.question``); locality probes are its neighbourhood prompts with their true answers. Portability
probes are built from the world's relations and KNOWN facts (the only ones the models were taught):

* ``reverse`` — when the edited relation ``r`` has an inverse ``q`` (``Relation.inverse``), the first cloze of
  ``q`` filled with the new object, answered by the subject ("The creator of <new work> is" -> the artist);
  when ``r`` is symmetric (``spouse``: read from the knowledge-graph schema, ``kg/schema/world.ttl``), the
  first cloze of ``r`` itself.
* ``multi_hop`` — when the new object is the subject of a KNOWN fact ``(o', r2, o2)``, and ``r`` has a cloze of
  the form "The X of {} is|was" (training cloze first, then paraphrase templates), the noun phrase
  "the X of <subject>" fills the first cloze of ``r2`` that has no possessive slot ("{}'s"), else its first
  cloze: "For university, the chief executive officer of Kodak attended" -> ``o2`` (a leading phrase is
  capitalised). One probe per such fact.

**EasyEdit / KnowEdit JSON** (a JSON array, or JSON Lines; field names as found in zjunlp/EasyEdit at
14cea82 and the KnowEdit dataset card, huggingface.co/datasets/zjunlp/KnowEdit):

* ``zsre`` — MEND's ``zsre_mend_eval.json`` as EasyEdit reads it (``easyeditor/dataset/zsre.py``,
  ``examples/run_zsre_llama2.py``, ``examples/run_AlphaEdit_editing.py``): ``subject``, ``src`` (the
  question), ``alt`` (new answer; rows with an empty ``alt`` are skipped, as EasyEdit does), ``answers`` (old
  answers, a list), ``rephrase``, ``loc`` ("nq question: ..."), ``loc_ans``, optional ``portability``
  ``{"New Question", "New Answer"}`` (``zsre_mend_eval_portability_gpt4.json``); and KnowEdit's
  ``ZsRE-test-all.json`` (``examples/KnowEdit.md``, ``easyeditor/dataset/knowedit.py``): ``subject``,
  ``target_new``, ``prompt``, ``ground_truth`` (a list), ``rephrase_prompt``, ``locality`` and
  ``portability`` (below).
* ``counterfact`` — KnowEdit's ``test_cf.json`` / ``train_cf.json``: ``subject``, ``prompt``, ``target_new``,
  ``ground_truth`` (a string), optional ``rephrase_prompt``, ``locality``, ``portability``; EasyEdit's
  ``counterfact-edit.json`` (``easyeditor/dataset/counterfact.py``): the same plus ``locality_prompt`` and
  ``locality_ground_truth``; and ROME's ``counterfact.json``: ``requested_rewrite`` {``prompt`` with ``{}``,
  ``subject``, ``target_new.str``, ``target_true.str``, ``relation_id``}, ``paraphrase_prompts``,
  ``neighborhood_prompts`` (answered by ``target_true``).
* ``wiki_recent`` — KnowEdit's ``recent_test.json`` (``easyeditor/dataset/wiki_recent.py``): ``subject``,
  ``prompt``, ``target_new``, optional ``rephrase``, ``locality``, ``portability``; no old answer (insertion).
* ``cknowedit`` — CKnowEdit (``examples/CKnowEdit.md``, ``easyeditor/dataset/Cknowedit.py``): ``prompt``,
  ``target_old``, ``target_new``, ``rephrase`` (a list), ``portability`` and ``locality`` as lists of
  ``{"prompt", "answer"}``. There is no subject field: like EasyEdit, the subject is the prompt without its
  instruction prefix ("请给下面的字注音：" ...), else the whole prompt.

KnowEdit's ``locality`` maps ``Relation_Specificity`` and ``Forgetfulness`` to lists of ``{"prompt",
"ground_truth"}``; ``portability`` maps ``Subject_Aliasing`` (kind ``alias``), ``Reasoning`` (``multi_hop``)
and ``Logical_Generalization`` (``logical``; other keys: the key in lower case). A ``ground_truth`` may be a
string, a list of aliases or a list of alias lists: the first string is kept and empty answers are dropped,
as ``examples/run_knowedit_llama2.py`` does. Pitfalls sets are read by :mod:`eval.editing._pitfalls`.

Every loader validates each row and raises :class:`~tools.errors.WorldFormatError` naming the file and the
row (``index i`` in a JSON array, ``line n`` in JSON Lines; see :mod:`eval.editing._rows`); ``strict=False``
skips bad rows with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from eval.editing._rows import RowError, Wrap, first_answer, parse_rows, prompt_answers, read_rows, string_list, text
from eval.world import Relation, World
from tools.edit import EditRequest
from tools.errors import WorldFormatError
from tools.lm import PromptFormat

__all__ = [
    "DatasetFormat",
    "EditCase",
    "PortabilityProbe",
    "Probe",
    "detect_format",
    "load_edit_dataset",
    "world_edit_cases",
]

DatasetFormat = Literal["zsre", "counterfact", "wiki_recent", "cknowedit", "pitfalls"]
_FORMATS = ("zsre", "counterfact", "wiki_recent", "cknowedit", "pitfalls")
PORTABILITY_KINDS = {"Subject_Aliasing": "alias", "Reasoning": "multi_hop", "Logical_Generalization": "logical"}
# CKnowEdit instruction prefixes / suffixes around the subject (easyeditor/dataset/Cknowedit.py), and the
# world-zh category each instruction belongs to (other rows: geography, logic traps, ...: "other")
_CKNOWEDIT_AFFIXES = (
    ("请填写下列古诗文的后一句：", "", "poetry_next"),
    ("请解释", "中的意思。仅需给出该字意思即可，无需解释全文。", "classical"),
    ("请解释如下成语：", "", "idiom"),
    ("请给下面的字注音：", "", "phonetic"),
    ("请解释如下俗语或谚语：", "", "saying"),
)
_NOUN_PHRASE = re.compile(r"^The (?P<noun>.+) of \{\} (?:is|was)$")


class Probe(NamedTuple):
    """A prompt and the answer expected after it (a locality probe)."""

    prompt: str
    answer: str


class PortabilityProbe(NamedTuple):
    """A prompt whose answer should follow from the edit; ``kind`` is reverse | multi_hop | alias | logical | ..."""

    prompt: str
    answer: str
    kind: str


@dataclass(frozen=True)
class EditCase:
    """One edit and its checks.

    Attributes:
        id: stable id (the world's edit id, the dataset's case id, or ``<format>-<row index>``).
        request: the edit to make.
        paraphrases: other prompts that should now give ``request.target_new`` (model input, questions wrapped
            when a prompt format was given).
        locality: prompts whose answers must not change.
        portability: prompts whose answers should follow from the edit.
        source: where the case comes from (``world``, ``zsre``, ``counterfact``, ``pitfalls/reverse``, ...).
        relation: relation id when known.
        ground_truth: the answer before the edit, when known.
        followups: edits applied after ``request`` within the case (Pitfalls' second, conflicting edit).
        category: CKnowEdit's category of a Chinese case (``poetry_next``, ``idiom``, ``phonetic``, ...):
            ``edit-bench`` reports such cases per category.
    """

    id: str
    request: EditRequest
    paraphrases: tuple[str, ...] = ()
    locality: tuple[Probe, ...] = ()
    portability: tuple[PortabilityProbe, ...] = ()
    source: str = ""
    relation: str | None = None
    ground_truth: str | None = None
    followups: tuple[EditRequest, ...] = ()
    category: str | None = None


# ------------------------------------------------------------------------------------------------ world


def world_edit_cases(
    world: World, prompt_format: PromptFormat, *, symmetric: Collection[str] | None = None
) -> list[EditCase]:
    """The world's EDITS as cases, with reverse and multi-hop portability probes (see the module docstring).

    Args:
        world: a loaded reference world.
        prompt_format: the model's prompt format; question prompts are wrapped with ``prompt_format.question``.
        symmetric: ids of symmetric relations; ``None`` reads them from the knowledge-graph schema.

    Returns:
        One case per edit, in file order.

    Example:
        >>> cases = world_edit_cases(load_world("eval/world/data"), PromptFormat())  # doctest: +SKIP
    """
    if symmetric is None:
        from kg import load_schema

        symmetric = {spec.id for spec in load_schema().relations if spec.symmetric}
    relations = {r.id: r for r in world.relations}
    known_by_subject: dict[str, list[tuple[str, str]]] = {}
    for fact in world.facts_in("known"):
        known_by_subject.setdefault(fact.subject, []).append((fact.relation, fact.object))

    def wrap(prompt: str) -> str:
        return prompt_format.question(prompt) if prompt.rstrip().endswith("?") else prompt

    cases = []
    for edit in world.edits:
        relation = relations[edit.relation]
        portability: list[PortabilityProbe] = []
        reverse = relation.inverse or (relation.id if relation.id in symmetric else None)
        if reverse is not None and reverse in relations:
            cloze = relations[reverse].cloze[0]
            portability.append(PortabilityProbe(_fill(cloze, edit.new_object), edit.subject, "reverse"))
        noun = _noun_phrase(relation)
        if noun is not None:
            phrase = f"the {noun} of {edit.subject}"
            for r2, o2 in known_by_subject.get(edit.new_object, []):
                prompt = _fill(_hop_template(relations[r2]), phrase)
                portability.append(PortabilityProbe(prompt, o2, "multi_hop"))
        cases.append(
            EditCase(
                id=edit.id,
                request=EditRequest(edit.prompt, edit.subject, edit.new_object, edit.old_object, edit.relation),
                paraphrases=tuple(wrap(p) for p in edit.paraphrases),
                locality=tuple(Probe(p.text, p.answer) for p in edit.neighbourhood),
                portability=tuple(portability),
                source="world",
                relation=edit.relation,
                ground_truth=edit.old_object,
            )
        )
    return cases


def _fill(template: str, phrase: str) -> str:
    """``template`` with ``phrase`` in its ``{}`` slot, capitalised when it opens the sentence."""
    if template.startswith("{}"):
        phrase = phrase[:1].upper() + phrase[1:]
    return template.replace("{}", phrase, 1)


def _hop_template(relation: Relation) -> str:
    """The first cloze of ``relation`` without a possessive slot (``{}'s``), else its first cloze."""
    return next((t for t in relation.cloze if "{}'s" not in t), relation.cloze[0])


def _noun_phrase(relation: Relation) -> str | None:
    """X of the first template "The X of {} is|was" of the relation (cloze, then paraphrases), or ``None``."""
    for template in (*relation.cloze, *relation.paraphrases):
        match = _NOUN_PHRASE.match(template)
        if match:
            return match.group("noun")
    return None


# ------------------------------------------------------------------------------------------ KnowEdit family


def _knowedit_extras(row: dict[str, Any], wrap: Wrap) -> tuple[list[Probe], list[PortabilityProbe]]:
    locality: list[Probe] = []
    loc = row.get("locality")
    if loc is not None:
        if not isinstance(loc, dict):
            raise RowError("field 'locality' must be an object of probe lists")
        for key, probes in loc.items():
            locality += [Probe(wrap(p), a) for p, a in prompt_answers(probes, f"locality.{key}")]
    if "locality_prompt" in row:  # EasyEdit counterfact-edit.json
        answer = first_answer(row.get("locality_ground_truth"))
        if answer is not None:
            locality.append(Probe(wrap(text(row, "locality_prompt")), answer))
    portability: list[PortabilityProbe] = []
    port = row.get("portability")
    if port is not None:
        if not isinstance(port, dict):
            raise RowError("field 'portability' must be an object")
        if "New Question" in port:  # zsre_mend_eval_portability_gpt4.json
            answer = first_answer(port.get("New Answer"))
            if answer is not None:
                portability.append(PortabilityProbe(wrap(text(port, "New Question")), answer, "multi_hop"))
        else:
            for key, probes in port.items():
                kind = PORTABILITY_KINDS.get(key, key.lower())
                portability += [
                    PortabilityProbe(wrap(p), a, kind) for p, a in prompt_answers(probes, f"portability.{key}")
                ]
    return locality, portability


def _knowedit_parser(fmt: str, wrap: Wrap, need_old: bool) -> Callable[[str, dict[str, Any]], EditCase | None]:
    def parse(key: str, row: dict[str, Any]) -> EditCase | None:
        if "src" in row:  # MEND zsre
            if isinstance(row.get("alt"), str) and not row["alt"].strip():
                return None  # EasyEdit skips rows without a new answer
            prompt, target, rephrase = text(row, "src"), text(row, "alt"), string_list(row.get("rephrase"), "rephrase")
            old = first_answer(row.get("answers"))
            loc_answer = first_answer(row.get("loc_ans"))
            extra_loc = [Probe(wrap(text(row, "loc")), loc_answer)] if "loc" in row and loc_answer else []
        else:
            prompt, target = text(row, "prompt"), text(row, "target_new")
            rephrase = string_list(row.get("rephrase_prompt", row.get("rephrase")), "rephrase_prompt")
            old = first_answer(row["ground_truth"]) if row.get("ground_truth") is not None else None
            extra_loc = []
        if need_old and old is None:
            raise RowError("no old answer ('ground_truth' / 'answers')")
        locality, portability = _knowedit_extras(row, wrap)
        request = EditRequest(wrap(prompt), text(row, "subject"), target, old if old != target else None)
        return EditCase(
            id=str(row.get("case_id", f"{fmt}-{key}")),
            request=request,
            paraphrases=tuple(wrap(p) for p in rephrase),
            locality=tuple(extra_loc + locality),
            portability=tuple(portability),
            source=fmt,
            ground_truth=old,
        )

    return parse


def _rome_counterfact_parser(wrap: Wrap) -> Callable[[str, dict[str, Any]], EditCase]:
    def parse(key: str, row: dict[str, Any]) -> EditCase:
        rewrite = row["requested_rewrite"]
        if not isinstance(rewrite, dict):
            raise RowError("field 'requested_rewrite' must be an object")
        subject, template = text(rewrite, "subject"), text(rewrite, "prompt")
        if "{}" not in template:
            raise RowError("requested_rewrite.prompt has no '{}' slot for the subject")
        new, old = (rewrite.get(k) for k in ("target_new", "target_true"))
        if not isinstance(new, dict) or not isinstance(old, dict):
            raise RowError("requested_rewrite.target_new and target_true must be objects with 'str'")
        target, truth = text(new, "str"), text(old, "str")
        relation = rewrite["relation_id"] if isinstance(rewrite.get("relation_id"), str) else None
        prompt = wrap(template.replace("{}", subject, 1))
        return EditCase(
            id=str(row.get("case_id", f"counterfact-{key}")),
            request=EditRequest(prompt, subject, target, truth if truth != target else None, relation),
            paraphrases=tuple(wrap(p) for p in string_list(row.get("paraphrase_prompts"), "paraphrase_prompts")),
            locality=tuple(
                Probe(wrap(p), truth) for p in string_list(row.get("neighborhood_prompts"), "neighborhood_prompts")
            ),
            source="counterfact",
            relation=relation,
            ground_truth=truth,
        )

    return parse


def _cknowedit_subject(prompt: str) -> tuple[str, str]:
    """The subject inside a CKnowEdit prompt and the prompt's category (``other`` for no known instruction)."""
    for prefix, suffix, category in _CKNOWEDIT_AFFIXES:
        if prompt.startswith(prefix) and prompt.endswith(suffix) and len(prompt) > len(prefix) + len(suffix):
            return prompt[len(prefix) : len(prompt) - len(suffix)], category
    return prompt, "other"


def _cknowedit_parser(wrap: Wrap) -> Callable[[str, dict[str, Any]], EditCase]:
    def parse(key: str, row: dict[str, Any]) -> EditCase:
        prompt, target = text(row, "prompt"), text(row, "target_new")
        old = first_answer(row.get("target_old"))
        subject, category = _cknowedit_subject(prompt)
        return EditCase(
            id=str(row.get("case_id", f"cknowedit-{key}")),
            request=EditRequest(wrap(prompt), subject, target, old if old != target else None),
            paraphrases=tuple(wrap(p) for p in string_list(row.get("rephrase"), "rephrase")),
            locality=tuple(Probe(wrap(p), a) for p, a in prompt_answers(row.get("locality"), "locality", "answer")),
            portability=tuple(
                PortabilityProbe(wrap(p), a, "other")
                for p, a in prompt_answers(row.get("portability"), "portability", "answer")
            ),
            source="cknowedit",
            ground_truth=old,
            category=category,
        )

    return parse


# ------------------------------------------------------------------------------------------------ dispatch


def detect_format(row: Any) -> DatasetFormat:
    """The format of a dataset from the fields of one row.

    Raises:
        WorldFormatError: the fields match no known format.
    """
    if isinstance(row, dict):
        keys = set(row)
        if {"triples", "edits"} <= keys:
            return "pitfalls"
        if "requested_rewrite" in keys or "locality_prompt" in keys:
            return "counterfact"
        if {"src", "alt"} <= keys:
            return "zsre"
        if {"prompt", "target_new", "target_old"} <= keys and "subject" not in keys:
            return "cknowedit"
        if {"subject", "prompt", "target_new"} <= keys:
            truth = row.get("ground_truth")
            if truth is None:
                return "wiki_recent"
            return "zsre" if isinstance(truth, list) else "counterfact"
    fields = sorted(row) if isinstance(row, dict) else type(row).__name__
    raise WorldFormatError(f"cannot tell the edit dataset format from the fields {fields}")


def load_edit_dataset(
    path: str | Path,
    format: DatasetFormat | Literal["auto"] = "auto",  # noqa: A002 - the public keyword the runner uses
    *,
    prompt_format: PromptFormat | None = None,
    strict: bool = True,
) -> list[EditCase]:
    """Read an edit dataset file into cases.

    Args:
        path: a JSON array or JSON Lines file in one of the formats of the module docstring.
        format: the format, or ``"auto"`` to detect it from the first row's fields.
        prompt_format: when given, question prompts (ending in ``?``) are wrapped with its ``question``.
        strict: raise on the first malformed row (default); otherwise skip it with a warning.

    Returns:
        The cases in file order (Pitfalls: one per case of the set).

    Raises:
        WorldFormatError: missing or unreadable file, unknown format, or a malformed row (file and row named).
    """
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        return []
    fmt = detect_format(rows[0][2]) if format == "auto" else format
    wrap = Wrap(prompt_format)
    if fmt == "pitfalls":
        from eval.editing._pitfalls import pitfalls_parser

        return parse_rows(path, rows, pitfalls_parser(path, wrap), strict)
    parsers: dict[str, Callable[[str, dict[str, Any]], EditCase | None]] = {
        "zsre": _knowedit_parser("zsre", wrap, need_old=True),
        "wiki_recent": _knowedit_parser("wiki_recent", wrap, need_old=False),
        "cknowedit": _cknowedit_parser(wrap),
    }
    if fmt == "counterfact":
        knowedit = _knowedit_parser("counterfact", wrap, need_old=True)
        rome = _rome_counterfact_parser(wrap)
        return parse_rows(path, rows, lambda w, r: rome(w, r) if "requested_rewrite" in r else knowedit(w, r), strict)
    if fmt not in parsers:
        raise WorldFormatError(f"unknown edit dataset format {fmt!r} (known: auto, {', '.join(_FORMATS)})")
    return parse_rows(path, rows, parsers[fmt], strict)
