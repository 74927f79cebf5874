"""The lifelong grid (Table 2): cached cells are skipped, the table and plot come out; bad input is refused
with a typed EditError before anything is edited."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from eval.editing import GridCell, GridSettings, lifelong_table, run_grid
from eval.editing._runner import run_edit_bench
from tests.conftest import REPO
from tools.errors import EditError, InvalidEditError, NotEnoughEditsError

if TYPE_CHECKING:
    from eval.world import World

MODEL = REPO / "eval" / "world" / "models" / "gpt2-world"


def _row(mode: str, rel: float) -> dict[str, Any]:
    return {"mode": mode, "reliability": rel, "generalization": 0.5, "locality": 1.0, "seconds_per_edit": 0.25}


def _record(method: str, t: int, rel: float) -> dict[str, Any]:
    rows = [_row("generation", rel), _row("teacher_forced", rel)]
    return {"method": method, "model": "gpt2", "T": t, "rows": rows, "wall_seconds": 3.0, "peak_rss_mb": 500.0}


def test_cached_cells_are_not_run_again(tmp_path: Path) -> None:
    cells = [GridCell(method="rome", model="gpt2", T=t) for t in (1, 10)]
    (tmp_path / "cells").mkdir()
    for cell, rel in zip(cells, (1.0, 0.5), strict=True):
        (tmp_path / "cells" / f"{cell.key}.json").write_text(json.dumps(_record("rome", cell.T, rel)))
    (tmp_path / "known_edits.json").write_text(json.dumps({"gpt2": {"pool": 9, "known": 8, "known_world": 3}}))
    seen: list[str] = []
    results = run_grid(cells, tmp_path, GridSettings(), on_cell=lambda c, s: seen.append(s))
    assert seen == ["cached", "cached"] and not results["failed"]
    table = (tmp_path / "table.md").read_text()
    assert "| rome | 1.00 | 0.50 | 1.00 | 0.83 | 0.50 | 0.50 | 1.00 | 0.67 |" in table
    assert "8 of 9 pool edits" in table and "0.25; 3; 500" in table
    assert (tmp_path / "t_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "results.json").read_text())["known_edits"]["gpt2"]["known"] == 8


def test_a_failed_cell_is_reported_and_tried_again(tmp_path: Path) -> None:
    (tmp_path / "known_edits.json").write_text(json.dumps({"gpt2": {"pool": 1, "known": 1, "known_world": 1}}))
    cell = GridCell(method="no-such-method", model="gpt2", T=1)
    results = run_grid([cell], tmp_path, GridSettings(device="cpu"), isolate=False)
    assert results["failed"][0]["error"].startswith("UnknownEditorError")
    assert (tmp_path / "cells" / f"{cell.key}.error.json").is_file()
    assert not (tmp_path / "cells" / f"{cell.key}.json").exists()  # not finished: run again next time
    assert "not measured: gpt2 no-such-method T=1" in lifelong_table(results)


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_t_above_the_pool_is_refused_before_any_edit(bundled_world: World) -> None:
    from eval.editing._datasets import world_edit_cases
    from tools.lm import PromptFormat

    cases = world_edit_cases(bundled_world, PromptFormat.load(MODEL))[:3]
    before = _digest(MODEL)
    edits: list[int] = []
    with pytest.raises(NotEnoughEditsError, match="T=5") as info:
        run_edit_bench(MODEL, "grace", [5], 5, cases, select="all", device="cpu", strict_t=True, on_edit=edits.append)
    assert isinstance(info.value, EditError) and not edits and _digest(MODEL) == before


def test_t_above_the_pool_leaves_the_loaded_model_and_journal_untouched(
    bundled_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tools.edit
    from eval.editing._datasets import world_edit_cases
    from tests.tools.edit._helpers import same, state
    from tools.edit import journal_for
    from tools.lm._hf import HFLanguageModel

    lm = HFLanguageModel.load(MODEL, device="cpu")
    cases = world_edit_cases(bundled_world, lm.prompt_format)[:3]
    before = state(lm)
    monkeypatch.setattr(tools.edit, "load_edited", lambda *_a, **_k: lm)  # the runner edits this very model
    for method in ("wise", "rome"):
        with pytest.raises(NotEnoughEditsError, match="T=4"):
            run_edit_bench(MODEL, method, [4], 4, cases, select="all", device="cpu", strict_t=True)
    assert same(before, state(lm)) and not journal_for(lm.model).entries


def test_a_subject_missing_from_its_prompt_is_refused(bundled_world: World) -> None:
    import dataclasses

    from eval.editing._datasets import world_edit_cases
    from tools.lm import PromptFormat

    edit = bundled_world.edits[0]
    bad = dataclasses.replace(bundled_world, edits=(dataclasses.replace(edit, subject="Nobody Atall"),))
    with pytest.raises(InvalidEditError, match="does not occur"):
        world_edit_cases(bad, PromptFormat.load(MODEL))


@pytest.mark.parametrize("bad", [{"shard_size": 0}, {"mask_ratio": 0.0}, {"density": 1.5}])
def test_a_shard_count_of_zero_leaves_model_and_journal_untouched(bundled_world: World, bad: dict[str, Any]) -> None:
    from tests.tools.edit._helpers import same, state
    from tools.edit import EditRequest, get_editor, journal_for
    from tools.lm._hf import HFLanguageModel

    lm = HFLanguageModel.load(MODEL, device="cpu")
    edit = bundled_world.edits[0]
    request = EditRequest(edit.prompt, edit.subject, edit.new_object, edit.old_object)
    before = state(lm)
    editor = get_editor("wise", corpus=[d.text for d in bundled_world.documents[:50]], **bad)
    with pytest.raises(InvalidEditError, match=next(iter(bad))):
        editor.apply(lm, editor.compute(lm, [request]))
    assert same(before, state(lm)) and not journal_for(lm.model).entries


class _StopError(Exception):
    """Stands for the cell's process being killed."""


@pytest.mark.slow
def test_a_killed_cell_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import eval.editing._runner as runner
    from eval.editing._lifelong import run_cell

    fast = {"ft-m": {"steps": 10, "lr": 0.01, "norm_constraint": 0.05}}
    cell = GridCell(method="ft-m", model="gpt2", T=3)
    whole = run_cell(cell, GridSettings(device="cpu", hparams=fast))
    real_saver = runner._saver

    def saver_then_stop(*args: Any) -> Any:
        after_call = real_saver(*args)

        def stop_after_second(done: int, seconds: float) -> None:
            after_call(done, seconds)
            if done == 2:
                raise _StopError

        return stop_after_second

    settings = GridSettings(device="cpu", hparams=fast, checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=1)
    monkeypatch.setattr(runner, "_saver", saver_then_stop)
    with pytest.raises(_StopError):
        run_grid([cell], tmp_path, settings, isolate=False)
    saved = tmp_path / "ck" / cell.key
    assert (saved / "model-0-2").is_dir() and not (tmp_path / "cells" / f"{cell.key}.json").exists()
    monkeypatch.setattr(runner, "_saver", real_saver)
    results = run_grid([cell], tmp_path, settings, isolate=False)
    record = results["cells"][0]
    assert record["parts"] == 2 and whole["parts"] == 1 and not saved.exists()
    strip = ("seconds_per_edit",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in record["rows"]] == [
        {k: v for k, v in r.items() if k not in strip} for r in whole["rows"]
    ]
