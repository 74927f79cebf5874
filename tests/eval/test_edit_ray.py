"""``edit-bench --engine ray``: cells on a local Ray cluster give the local rows; a failing cell fails the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from eval._ray_session import start_ray
from eval.editing import run_cells_ray, run_edit_bench
from tests.conftest import REPO
from tools.errors import FactagentError, LayerOutOfRangeError

if TYPE_CHECKING:
    from eval.world import World

pytestmark = pytest.mark.slow  # starting Ray and its workers takes 20-50 s on 2 busy cores
MODEL = REPO / "eval" / "world" / "models" / "gpt2-world"
FAST_FT = {"steps": 10, "lr": 0.01, "norm_constraint": 0.05}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    start_ray(ray, workers=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def cases(bundled_world: World) -> list[Any]:
    from eval.editing._datasets import world_edit_cases
    from tools.lm import PromptFormat

    return list(world_edit_cases(bundled_world, PromptFormat.load(MODEL)))


def _without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "seconds_per_edit"} for row in rows]


def test_ray_cells_give_the_local_rows_and_a_failing_cell_fails_the_run(ray_cluster: None, cases: list[Any]) -> None:
    common: dict[str, Any] = {"cases": cases, "seed": 3, "device": "cpu", "hparams": FAST_FT}
    local = run_edit_bench(MODEL, "ft-m", [1, 2], 2, **common)
    finished: list[int] = []
    cells = [{"lm_path": MODEL, "method": "ft-m", "T_values": [t], "n": 2, **common} for t in (1, 2)]
    distributed = [row for cell in run_cells_ray(cells, workers=2, on_cell=finished.append) for row in cell]
    assert _without_timing(distributed) == _without_timing(local)
    assert sorted(finished) == [0, 1]

    bad = [*cells[:1], {**cells[0], "hparams": {**FAST_FT, "layers": [99]}}]
    with pytest.raises(LayerOutOfRangeError):  # the worker's own typed error, not a Ray wrapper
        run_cells_ray(bad, workers=2)


def test_cli_runs_on_ray_and_reports_a_failing_worker_cleanly(
    ray_cluster: None, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    base = ["--home", str(tmp_path / "home"), "edit-bench", "--model", str(MODEL), "--method", "ft-m", "--T", "1"]
    base += ["--n", "1", "--engine", "ray", "--no-plot", "--device", "cpu"]
    fast = [arg for k, v in FAST_FT.items() for arg in ("--hparam", f"{k}={v}")]
    assert main([*base, *fast, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["T"], r["mode"]) for r in rows] == [(1, "teacher_forced"), (1, "generation")]

    code = main([*base, *fast, "--hparam", "layers=[99]", "--json"])
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""  # no partial table presented as complete
    assert "Traceback" not in captured.err and "layer" in captured.err.lower()
    assert issubclass(LayerOutOfRangeError, FactagentError)
