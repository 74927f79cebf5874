"""The editing cost benchmark: rows from a real child process, the table, argument errors."""

from __future__ import annotations

import io
import json

import pytest

from bench.edit_bench import REQUIRED_KEYS, Row, format_table, main


@pytest.mark.slow
def test_json_rows_from_a_child_process() -> None:
    out = io.StringIO()
    assert main(["--methods", "ft-m", "--models", "gpt2", "--edits", "2", "--device", "cpu", "--json"], out=out) == 0
    rows = json.loads(out.getvalue())
    assert len(rows) == 1
    row = rows[0]
    assert set(REQUIRED_KEYS) <= set(row)
    assert row["method"] == "ft-m" and row["model"] == "gpt2-world" and row["edits"] == 2
    assert 0 < row["median_seconds_per_edit"] <= row["max_seconds_per_edit"]
    assert row["peak_rss_mb"] >= row["load_rss_mb"] > 50  # torch and the model are in there
    assert row["stats_seconds"] is None and row["stats_cached_seconds"] is None  # FT needs no key statistics


@pytest.mark.slow
def test_key_statistics_are_timed_cold_and_cached() -> None:
    out = io.StringIO()
    argv = ["--methods", "rome", "--models", "gpt2", "--edits", "1", "--stats-texts", "32", "--device", "cpu"]
    assert main([*argv, "--json"], out=out) == 0
    row = json.loads(out.getvalue())[0]
    assert not row.get("skipped"), row.get("note")
    assert row["stats_layers"] and row["stats_seconds"] > row["stats_cached_seconds"] > 0


def test_table_shows_numbers_and_skip_reasons() -> None:
    rows = [
        Row("rome", "gpt2-world", 5, 0.5, 480.0, 3.2, 0.01, max_seconds_per_edit=0.9),
        Row("wise", "gpt2-world", 0, None, None, None, None, skipped=True, note="No module named 'tools.edit._wise'"),
    ]
    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["model", "method", "edits"]
    assert "0.500" in lines[1] and "3.20" in lines[1] and "480" in lines[1]
    assert "skipped: No module named" in lines[2]
    assert rows[1].to_dict()["median_seconds_per_edit"] is None  # required keys stay, as null


def test_unknown_method_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--methods", "magic"])
    assert info.value.code == 2
    assert "choose from" in capsys.readouterr().err
