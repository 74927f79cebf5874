"""Records of the world's slices beyond the English facts: concepts (issue 22) and Chinese (issue 23).

A *slice fact* is one question-answer fact with its own, fully written prompts, so that training and the
check need no per-slice template code:

========================  ===============================================================================
file                      record
========================  ===============================================================================
``concepts.jsonl``        :class:`Concept` — a class of the hierarchy (``parent`` = rdfs:subClassOf), its
                          definition, instances and non-instances among the world's entities
``slice_facts.jsonl``     :class:`SliceFact` — a definition, instance-of or Chinese fact, split
                          ``known`` | ``unknown``, with training prompts, held-out questions and a statement
``slice_edits.jsonl``     :class:`SliceEdit` — a new answer for a KNOWN slice fact (a concept's definition
                          from a sibling or a distant concept; a counterfactual Chinese answer)
``slice_questions.jsonl`` :class:`~eval.world._schema.Question` — ids ``cq*`` / ``zq*``; ``relation`` is
                          ``"<slice>:<category>"``
``concepts.ttl``          the hierarchy as OWL classes (``rdfs:subClassOf``, ``skos:definition``)
========================  ===============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SliceName = Literal["concepts", "zh"]
EditKind = Literal["sibling", "distant", "counterfactual"]


@dataclass(frozen=True)
class Concept:
    """A class of the concept hierarchy. ``parent`` is ``None`` for a root class."""

    id: str
    label: str
    parent: str | None
    definition: str  # one sentence without its subject: "a large town where many people live and work"
    instances: tuple[str, ...]
    non_instances: tuple[str, ...]


@dataclass(frozen=True)
class SliceFact:
    """One fact of a slice with its prompts.

    ``cloze`` prompts are completed by the answer (then ``.`` or ``。``), ``questions`` are asked in training,
    ``heldout`` questions never are. ``statement`` states the fact (documents and reading contexts). ``key``
    is the text that, in one sentence with ``subject``, states the fact (for the leak check): the answer,
    or for an instance-of fact the concept's label with its article (``an Apple product``).
    """

    id: str
    slice: SliceName
    category: str
    subject: str
    answer: str
    split: Literal["known", "unknown"]
    cloze: tuple[str, ...]
    questions: tuple[str, ...]
    heldout: tuple[str, ...]
    statement: str
    key: str
    language: Literal["en", "zh"] = "en"


@dataclass(frozen=True)
class Prompted:
    """A question with the answer expected (locality prompts of a slice edit)."""

    text: str
    answer: str


@dataclass(frozen=True)
class SliceEdit:
    """A new answer for a KNOWN slice fact, with generalization and locality prompts.

    ``prompt`` is a training cloze of the fact, ``paraphrases`` its training and held-out questions, ``locality``
    questions about other facts of the slice whose answers must not change. For a concept edit ``source`` is
    the concept whose definition becomes the new one and ``kind`` says whether it is a sibling (same parent)
    or a distant concept (another root).
    """

    id: str
    fact_id: str
    slice: SliceName
    category: str
    subject: str
    old_answer: str
    new_answer: str
    kind: EditKind
    source: str
    prompt: str
    paraphrases: tuple[str, ...]
    locality: tuple[Prompted, ...]
