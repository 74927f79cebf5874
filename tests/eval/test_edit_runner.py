"""The editing benchmark runner on the bundled GPT-2 world model with a real editor (FT-M, a few steps)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from eval.editing._report import edit_bench_table, plot_edit_bench
from eval.editing._runner import EXTRA_KEYS, REQUIRED_KEYS, _t_plan, default_edit_mode, run_edit_bench, select_cases
from tests.conftest import REPO
from tools.errors import InvalidInputError, UnknownEditorError

if TYPE_CHECKING:
    from eval.world import World

MODEL = REPO / "eval" / "world" / "models" / "gpt2-world"
FAST_FT = {"steps": 10, "lr": 0.01, "norm_constraint": 0.05}  # strong enough to flip a fact in a few steps


@pytest.fixture(scope="module")
def cases(bundled_world: World) -> list[Any]:
    from eval.editing._datasets import world_edit_cases
    from tools.lm import PromptFormat

    return list(world_edit_cases(bundled_world, PromptFormat.load(MODEL)))


@pytest.fixture(scope="module")
def rows(cases: list[Any]) -> list[dict[str, Any]]:
    edits: list[int] = []
    out = run_edit_bench(
        MODEL, "ft-m", [1, 2], None, cases, seed=3, device="cpu", hparams=FAST_FT, on_edit=edits.append
    )
    assert edits == [1, 1, 1]  # sequential: one call per fact, T=1 then T=2 on a fresh model
    return out


@pytest.mark.slow
def test_rows_have_exactly_the_documented_keys(rows: list[dict[str, Any]]) -> None:
    assert [(r["T"], r["mode"]) for r in rows] == [
        (1, "teacher_forced"),
        (1, "generation"),
        (2, "teacher_forced"),
        (2, "generation"),
    ]
    for row in rows:
        assert list(row)[: len(REQUIRED_KEYS)] == list(REQUIRED_KEYS)
        assert set(row) == set(REQUIRED_KEYS) | set(EXTRA_KEYS)
        assert row["method"] == "ft-m" and row["model"] == "gpt2-world"
        assert row["n"] == row["T"] == row["T_requested"]
        assert row["edit_mode"] == "sequential" and row["batch_size"] == 1
        assert row["seconds_per_edit"] > 0
        for key in ("reliability", "locality", "locality_vs_truth", "generalization_all"):
            assert 0.0 <= row[key] <= 1.0
        assert row["fluency"] > 0


@pytest.mark.slow
def test_edits_take(rows: list[dict[str, Any]]) -> None:
    gen = [r for r in rows if r["mode"] == "generation"]
    assert all(r["reliability"] == 1.0 for r in gen)  # FT-M with these settings writes each fact
    tf = {r["T"]: r for r in rows if r["mode"] == "teacher_forced"}
    assert tf[1]["fluency"] == next(r["fluency"] for r in gen if r["T"] == 1)  # one measurement, both rows


@pytest.mark.slow
def test_table_states_the_protocol(rows: list[dict[str, Any]]) -> None:
    table = edit_bench_table(rows)
    assert "scored after all T edits" in table
    assert "ft-m: sequential" in table
    assert len(table.splitlines()) == 3 + 1 + len(rows)  # three lines of protocol, the column names, the rows


@pytest.mark.slow
def test_plot_is_a_png(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = plot_edit_bench(rows, tmp_path / "sub" / "plot.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_batch_mode_and_capped_t(cases: list[Any]) -> None:
    edits: list[int] = []
    rows = run_edit_bench(
        MODEL, "ft-m", [1, 3], 2, cases, edit_mode="batch", device="cpu", hparams=FAST_FT, on_edit=edits.append
    )
    assert edits == [1, 2]  # T=1, then all of T=3 capped to the 2 selected cases in one call
    last = rows[-1]
    assert (last["T_requested"], last["T"], last["n"], last["batch_size"]) == (3, 2, 2, 2)
    assert last["edit_mode"] == "batch"
    assert "T capped to the cases available: 3 -> 2" in edit_bench_table(rows)


def test_selection_is_seeded_and_known(cases: list[Any]) -> None:
    from eval.editing._metrics import LMProber, answer_matches
    from tools.lm._hf import HFLanguageModel

    lm = HFLanguageModel.load(MODEL, device="cpu")
    first = select_cases(lm, cases, 4, seed=1)
    assert len(first) == 4
    assert [c.id for c in first] == [c.id for c in select_cases(lm, cases, 4, seed=1)]
    assert [c.id for c in first] != [c.id for c in select_cases(lm, cases, 4, seed=2)]
    answers = LMProber(lm).answers([c.request.prompt for c in first])
    assert all(answer_matches(a, c.request.target_old or "") for a, c in zip(answers, first, strict=True))
    assert len(select_cases(lm, cases[:3], 10, select="all")) == 3
    with pytest.raises(InvalidInputError):
        select_cases(lm, cases, 0)


def test_t_is_capped_to_the_cases_available() -> None:
    assert _t_plan([1, 10, 100, 1000], 50) == [(1, 1), (10, 10), (100, 50)]
    assert default_edit_mode("MEMIT") == "batch" and default_edit_mode("rome") == "sequential"


def test_bad_arguments_fail_before_any_work(cases: list[Any]) -> None:
    with pytest.raises(InvalidInputError, match="T values"):
        run_edit_bench(MODEL, "ft-m", [0], None, cases)
    with pytest.raises(UnknownEditorError, match="known: "):
        run_edit_bench(MODEL, "nope", [1], None, cases)
    with pytest.raises(InvalidInputError, match="edit_mode"):
        run_edit_bench(MODEL, "ft-m", [1], None, cases, edit_mode="parallel")  # type: ignore[arg-type]


def test_neighbours_that_are_edited_subjects_do_not_count_for_locality() -> None:
    from eval.editing import EditCase
    from eval.editing._datasets import Probe
    from eval.editing._runner import without_edited_neighbours
    from tools.edit import EditRequest

    def case(subject: str, neighbours: list[str]) -> EditCase:
        return EditCase(
            id=subject,
            request=EditRequest(f"{subject}'s CEO is", subject, "X", "Y"),
            paraphrases=(),
            locality=tuple(Probe(f"{n}'s CEO is", "Z") for n in neighbours),
            portability=(),
            source="test",
            relation="company_ceo",
            ground_truth="Y",
        )

    kept = without_edited_neighbours([case("Nokia", ["Nortel", "BASF"]), case("Nortel", ["HP Inc."])])
    assert [p[0] for p in kept[0].locality] == ["BASF's CEO is"]
    assert [p[0] for p in kept[1].locality] == ["HP Inc.'s CEO is"]
