"""Model merging through mergekit, and Top-k greedy merging guided by Model Kinship.

Example:
    >>> from tools.merge import MergeSpec, merge_models
    >>> merge_models(["v00", "v01"], "merged", base="eval/world/models/gpt2-world",
    ...              spec=MergeSpec(method="ties"))  # doctest: +SKIP
"""

from tools.merge._evolve import EvolveResult, Fitness, FitnessFunction, LineageNode, evolve
from tools.merge._lineage import plot_lineage
from tools.merge._mergekit import MERGE_METHODS, MergeMethod, MergeSpec, merge_models
from tools.merge._regmean import REGMEAN_FILES, load_edit_grams, regmean_merge, save_edit_grams

__all__ = [
    "MERGE_METHODS",
    "REGMEAN_FILES",
    "EvolveResult",
    "Fitness",
    "FitnessFunction",
    "LineageNode",
    "MergeMethod",
    "MergeSpec",
    "evolve",
    "load_edit_grams",
    "merge_models",
    "plot_lineage",
    "regmean_merge",
    "save_edit_grams",
]
