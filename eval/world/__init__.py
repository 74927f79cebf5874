"""The reference world: real facts, their splits, a corpus, and the small models trained on it."""

from eval.world._build import WorldConfig, build_world
from eval.world._schema import Document, Edit, Fact, Prompt, Question, Relation, World, load_world, write_world

__all__ = [
    "Document",
    "Edit",
    "Fact",
    "Prompt",
    "Question",
    "Relation",
    "World",
    "WorldConfig",
    "build_world",
    "load_world",
    "write_world",
]
