"""The reference world: real facts, their splits, a corpus, and the small models trained on it.

The entry points (``agent.cli``, ``agent.server``) use only the names exported here. Building and training
(``build_all``, ``trained_slices``) import torch, so they load on first use.
"""

from typing import TYPE_CHECKING

from eval.world._build import WorldConfig, build_world
from eval.world._check import majority_baseline, run_check
from eval.world._concept_rows import load_world_concepts
from eval.world._lifelong import load_lifelong_edits
from eval.world._load_memory import WORLD_SCOPE, load_world_into, world_documents
from eval.world._paths import ALL_MODEL_NAMES, DATA_DIR, MODEL_NAMES, MODELS_DIR
from eval.world._schema import Document, Edit, Fact, Prompt, Question, Relation, World, load_world, write_world
from eval.world._slice_check import run_slice_check
from eval.world._zh_names import name_world_entities_zh

if TYPE_CHECKING:  # torch: loaded on first use, below
    from eval.world._concept_variant import build_concept_stage
    from eval.world._pipeline import build_all, write_world_files
    from eval.world._train import trained_slices
    from eval.world._zh_variant import build_zh_stage

__all__ = [  # noqa: RUF022 -- plain sorted() order, which tests/test_package.py checks
    "ALL_MODEL_NAMES",
    "DATA_DIR",
    "Document",
    "Edit",
    "Fact",
    "MODELS_DIR",
    "MODEL_NAMES",
    "Prompt",
    "Question",
    "Relation",
    "WORLD_SCOPE",
    "World",
    "WorldConfig",
    "build_all",
    "build_concept_stage",
    "build_world",
    "build_zh_stage",
    "load_lifelong_edits",
    "load_world",
    "load_world_concepts",
    "load_world_into",
    "majority_baseline",
    "name_world_entities_zh",
    "run_check",
    "run_slice_check",
    "trained_slices",
    "world_documents",
    "write_world",
    "write_world_files",
]

_LAZY = {
    "build_all": "eval.world._pipeline",
    "build_concept_stage": "eval.world._concept_variant",
    "write_world_files": "eval.world._pipeline",
    "trained_slices": "eval.world._train",
    "build_zh_stage": "eval.world._zh_variant",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
