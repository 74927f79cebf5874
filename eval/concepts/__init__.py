"""Concept-level editing (ConceptEdit): definition edits, Instance Change, Concept Consistency, the benchmark."""

from eval.concepts._bench import CONCEPT_METHODS, ROW_KEYS, editor_for, run_concept_bench
from eval.concepts._cases import ConceptCase, InstanceProbe, load_conceptedit, world_concept_cases
from eval.concepts._metrics import (
    ConsistencyJudge,
    EmbeddingConsistency,
    InstanceChange,
    LLMConsistencyJudge,
    YesNo,
    instance_change,
    yes_no,
)

__all__ = [
    "CONCEPT_METHODS",
    "ROW_KEYS",
    "ConceptCase",
    "ConsistencyJudge",
    "EmbeddingConsistency",
    "InstanceChange",
    "InstanceProbe",
    "LLMConsistencyJudge",
    "YesNo",
    "editor_for",
    "instance_change",
    "load_conceptedit",
    "run_concept_bench",
    "world_concept_cases",
    "yes_no",
]
