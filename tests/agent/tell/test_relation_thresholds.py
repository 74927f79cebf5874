"""A threshold per relation read: the shared wrong budget, and the reader saving and using them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent.tell import ReaderModel
from agent.tell._acceptance import fit_relation_thresholds, fit_threshold
from tools.errors import InvalidInputError


def test_each_relation_gets_its_share_of_the_wrong_budget() -> None:
    # "a" is never wrong; "b" is confidently wrong once in ten; ten sentences read nothing
    outcomes: list[tuple[str | None, float | None, bool]] = [("a", 0.5 + i / 100, True) for i in range(40)]
    outcomes += [("b", 0.5 + i / 100, True) for i in range(36)] + [("b", 0.99, False)] * 4
    outcomes += [(None, None, False)] * 20
    per, right, wrong = fit_relation_thresholds(outcomes, max_wrong=0.01)
    assert per["a"] == 0.5  # every reading of "a" accepted
    assert per["b"] == 1.01  # 4 confident wrong readings are over b's share (0.01 x 100 x 40/80 = 0.5)
    assert right == 0.4 and wrong == 0.0
    shared, shared_right, _ = fit_threshold([(c, ok) for _, c, ok in outcomes], max_wrong=0.01)
    assert shared == 1.01 and shared_right < right  # one threshold for all has to stop above b's wrong readings
    loose, right, wrong = fit_relation_thresholds(outcomes, max_wrong=0.08)
    assert loose["b"] == 0.5 and wrong == 0.04 and right == 0.76  # b may now take its 4 wrong readings
    with pytest.raises(InvalidInputError):
        fit_relation_thresholds([], 0.01)


def test_the_reader_saves_its_relation_thresholds_and_reads_with_them(tmp_path: Path) -> None:
    model = replace(ReaderModel.load(), relation_thresholds={"spouse": 0.5})
    assert model.accept_at_for("spouse") == 0.5 and model.accept_at_for("company_ceo") == model.threshold
    model.save(tmp_path / "reader.npz")
    loaded = ReaderModel.load(tmp_path / "reader.npz")
    assert loaded.relation_thresholds == {"spouse": 0.5} and loaded.threshold == model.threshold
