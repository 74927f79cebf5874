"""Knowledge-editing evaluation: edit cases from the reference world, EasyEdit/KnowEdit files and Pitfalls."""

from eval.editing._checkpoint import BenchCheckpoint
from eval.editing._datasets import (
    DatasetFormat,
    EditCase,
    PortabilityProbe,
    Probe,
    detect_format,
    load_edit_dataset,
    world_edit_cases,
)
from eval.editing._lifelong import (
    LIFELONG_METHODS,
    LIFELONG_MODELS,
    LIFELONG_T,
    GridCell,
    GridSettings,
    lifelong_table,
    plot_t_curve,
    run_grid,
)
from eval.editing._metrics import LMProber, Mode, TargetPrediction, answer_matches, fluency, text_entropy
from eval.editing._pitfalls import PITFALLS_DIR, pitfalls_edit_cases
from eval.editing._ray import run_cells_ray
from eval.editing._report import edit_bench_table, plot_edit_bench
from eval.editing._runner import run_edit_bench, select_cases
from eval.editing._world_zh import world_zh_edit_cases

__all__ = [
    "LIFELONG_METHODS",
    "LIFELONG_MODELS",
    "LIFELONG_T",
    "PITFALLS_DIR",
    "BenchCheckpoint",
    "DatasetFormat",
    "EditCase",
    "GridCell",
    "GridSettings",
    "LMProber",
    "Mode",
    "PortabilityProbe",
    "Probe",
    "TargetPrediction",
    "answer_matches",
    "detect_format",
    "edit_bench_table",
    "fluency",
    "lifelong_table",
    "load_edit_dataset",
    "pitfalls_edit_cases",
    "plot_edit_bench",
    "plot_t_curve",
    "run_cells_ray",
    "run_edit_bench",
    "run_grid",
    "select_cases",
    "text_entropy",
    "world_edit_cases",
    "world_zh_edit_cases",
]
