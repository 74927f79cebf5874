"""Resumable edit-bench runs (eval.editing._checkpoint): stopped, resumed, and the same rows as one run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch

from eval.editing._checkpoint import BenchCheckpoint, RunState, fingerprint
from eval.editing._runner import run_edit_bench
from tests.conftest import REPO
from tools.errors import CheckpointMismatchError, InvalidInputError

if TYPE_CHECKING:
    from eval.world import World

MODEL = REPO / "eval" / "world" / "models" / "gpt2-world"
FAST_FT = {"steps": 10, "lr": 0.01, "norm_constraint": 0.05}


class _StopError(Exception):
    """Stands for the process being killed in the middle of a run."""


@pytest.fixture(scope="module")
def cases(bundled_world: World) -> list[Any]:
    from eval.editing._datasets import world_edit_cases
    from tools.lm import PromptFormat

    return list(world_edit_cases(bundled_world, PromptFormat.load(MODEL)))


def _without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds_per_edit"} for r in rows]


def test_rng_states_come_back(tmp_path: Path) -> None:
    ckpt = BenchCheckpoint(tmp_path, every=1)
    ckpt.open({"method": "x"})
    state = RunState(t_index=1)
    ckpt.save(state, None)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    saved = BenchCheckpoint(tmp_path).open({"method": "x"})
    assert saved.t_index == 1 and saved.model is None
    ckpt.restore(saved)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_another_commands_checkpoint_is_refused(tmp_path: Path) -> None:
    ckpt = BenchCheckpoint(tmp_path)
    ckpt.open({"method": "rome", "seed": 0})
    ckpt.save(RunState(t_index=1), None)
    before = (tmp_path / "state.json").read_bytes()
    with pytest.raises(CheckpointMismatchError, match="differs in: seed"):
        BenchCheckpoint(tmp_path).open({"method": "rome", "seed": 1})
    assert (tmp_path / "state.json").read_bytes() == before  # left as it was
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointMismatchError, match="cannot be read"):
        BenchCheckpoint(tmp_path).open({"method": "rome", "seed": 0})
    with pytest.raises(InvalidInputError):
        BenchCheckpoint(tmp_path, every=0)


def test_fingerprint_tells_the_cases_apart(cases: list[Any]) -> None:
    assert fingerprint({"a": 1}, cases[:3]) == fingerprint({"a": 1}, cases[:3])
    assert fingerprint({"a": 1}, cases[:3]) != fingerprint({"a": 1}, cases[1:4])
    assert fingerprint({"a": 1}, cases[:3]) != fingerprint({"a": 2}, cases[:3])


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_same_rows(cases: list[Any], tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"seed": 3, "device": "cpu", "hparams": FAST_FT, "edit_mode": "batch", "batch_size": 1}
    whole = run_edit_bench(MODEL, "ft-m", [1, 3], None, cases, **kwargs)

    calls: list[int] = []

    def stop_at_third(n: int) -> None:
        calls.append(n)
        if len(calls) == 3:  # the second edit of T=3: T=1 is scored, T=3's first edit is saved
            raise _StopError

    ckpt = tmp_path / "ckpt"
    with pytest.raises(_StopError):
        run_edit_bench(
            MODEL,
            "ft-m",
            [1, 3],
            None,
            cases,
            checkpoint=BenchCheckpoint(ckpt, every=1),
            on_edit=stop_at_third,
            **kwargs,
        )
    assert sorted(p.name for p in ckpt.iterdir()) == ["model-1-1", "state.json"]

    with pytest.raises(CheckpointMismatchError):  # another command: refused before any edit
        run_edit_bench(MODEL, "ft-m", [1, 3], None, cases, checkpoint=BenchCheckpoint(ckpt), **(kwargs | {"seed": 4}))
    resumed_calls: list[int] = []
    resumed = run_edit_bench(
        MODEL,
        "ft-m",
        [1, 3],
        None,
        cases,
        checkpoint=BenchCheckpoint(ckpt, every=1),
        on_edit=resumed_calls.append,
        **kwargs,
    )
    assert resumed_calls == [1, 1, 1]  # the edit made before the stop, then the two left
    assert _without_time(resumed) == _without_time(whole)
    assert [r["model"] for r in resumed] == ["gpt2-world"] * 4
    assert sorted(p.name for p in ckpt.iterdir()) == ["state.json"]  # finished: no model kept

    again: list[int] = []
    rows = run_edit_bench(
        MODEL, "ft-m", [1, 3], None, cases, checkpoint=BenchCheckpoint(ckpt), on_edit=again.append, **kwargs
    )
    assert again == [] and rows == resumed  # a finished run gives its rows without editing
