"""Model Kinship: similarity of models' delta parameters against a common base, streamed over safetensors.

Example:
    >>> from tools.kinship import kinship
    >>> report = kinship(["variants/v00", "variants/v01"], base="eval/world/models/gpt2-world")  # doctest: +SKIP
    >>> report.to_json()["pcc"]  # doctest: +SKIP
"""

from tools.kinship._kinship import DeltaSimilarity, KinshipReport, PairKinship, kinship
from tools.kinship._plot import plot_kinship
from tools.kinship._weights import WeightSource, layer_of, open_sources

__all__ = [
    "DeltaSimilarity",
    "KinshipReport",
    "PairKinship",
    "WeightSource",
    "kinship",
    "layer_of",
    "open_sources",
    "plot_kinship",
]
