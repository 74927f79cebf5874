"""Scoring of the slices: Chinese normalisation and per-category figures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from eval.world import World
from eval.world._build import subset_world
from eval.world._slice_check import normalize_zh, run_slice_check, slice_match, slice_probes
from tools.lm import Generation, PromptFormat


def test_chinese_answers_match_across_punctuation_width_and_spaces() -> None:
    assert slice_match("巴黎。", "巴黎", "zh")
    assert slice_match(" 黃河入海流」", "黃河入海流", "zh")
    assert slice_match("ｈáｎｇ", "háng", "zh")  # full-width Latin folds (NFKC)
    assert not slice_match("háng", "xíng", "zh")
    assert not slice_match("。", "巴黎", "zh")  # punctuation alone is no answer
    assert not slice_match("黄河入海流", "黃河入海流", "zh")  # traditional stays traditional (no OpenCC folding)
    assert normalize_zh("「白日依山盡」，") == "白日依山盡"
    assert slice_match(
        " a large town where many people live and work.", "a large town where many people live and work", "en"
    )


class _Oracle:
    """A language model that answers every probe with its gold answer, or ``wrong`` for one metric."""

    prompt_format = PromptFormat()
    name = "oracle"

    def __init__(self, gold: dict[str, str]) -> None:
        self.gold = gold

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 24, batch_size: int = 64) -> list[Generation]:
        return [Generation(text=" " + self.gold.get(p, "？")) for p in prompts]


def test_figures_per_category(bundled_world: World) -> None:
    world = World(**{**subset_world(bundled_world, ("company_hq",), 5).__dict__,
                     "slice_facts": bundled_world.slice_facts})  # fmt: skip
    probes = slice_probes(world, "zh", PromptFormat(), limit=4)
    gold = {p: a for _c, metric, p, a, _l in probes if metric != "unknown"}
    figures = run_slice_check(_Oracle(gold), world, "zh", limit=4)
    assert set(figures) == {"all", "poetry_next", "poetry_author", "saying", "idiom", "phonetic", "classical",
                            "geography_capital", "geography_landmark", "logic_trap"}  # fmt: skip
    for category, row in figures.items():
        assert row["known_train"] == 1.0 and row["context_unknown"] == 1.0 and row["unknown"] == 0.0, category
    assert run_slice_check(_Oracle(gold), subset_world(bundled_world, ("company_hq",), 5), "zh") == {}


def test_only_the_slices_a_model_was_trained_on_are_checked(tmp_path: Path) -> None:
    from eval.world._pipeline import MODELS_DIR
    from eval.world._train import trained_slices

    assert trained_slices(MODELS_DIR / "gpt2-world") == ()  # built before the slices existed
    (tmp_path / "training.json").write_text(json.dumps({"steps": 1, "slices": ["concepts", "zh"]}))
    assert trained_slices(tmp_path) == ("concepts", "zh")
    assert trained_slices(tmp_path / "missing") == ()
