"""Concept-level editing (ConceptEdit): definition edits, Instance Change, Concept Consistency, the benchmark."""

from eval.concepts._bench import CONCEPT_METHODS, ROW_KEYS, editor_for, run_concept_bench
from eval.concepts._cases import ConceptCase, InstanceProbe, load_conceptedit, world_concept_cases
from eval.concepts._consistency import ConceptConsistency, check_concept_consistency
from eval.concepts._dev import dev_concept_cases, preserved_definition_prompts, uses_preserved_prompts
from eval.concepts._metrics import (
    ConsistencyJudge,
    EmbeddingConsistency,
    InstanceChange,
    LLMConsistencyJudge,
    YesNo,
    instance_change,
    yes_no,
)
from eval.concepts._world import (
    ConceptEditSpec,
    ConceptRow,
    expected_members,
    world_concept_edits,
    world_concept_rows,
)

__all__ = [  # noqa: RUF022 -- plain sorted() order, which tests/test_package.py checks
    "CONCEPT_METHODS",
    "ConceptCase",
    "ConceptConsistency",
    "ConceptEditSpec",
    "ConceptRow",
    "ConsistencyJudge",
    "EmbeddingConsistency",
    "InstanceChange",
    "InstanceProbe",
    "LLMConsistencyJudge",
    "ROW_KEYS",
    "YesNo",
    "check_concept_consistency",
    "dev_concept_cases",
    "editor_for",
    "expected_members",
    "instance_change",
    "load_conceptedit",
    "preserved_definition_prompts",
    "run_concept_bench",
    "uses_preserved_prompts",
    "world_concept_cases",
    "world_concept_edits",
    "world_concept_rows",
    "yes_no",
]
