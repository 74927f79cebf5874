"""``bench/ask_load.py``'s modes and the configs it writes for them (the served modes included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings
from bench.ask_load import _config, _modes


def test_the_served_modes_config_answers_with_the_endpoint(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_config(1, None, "http://127.0.0.1:8089/v1 gpt2-world"))
    settings = load_settings(path)
    assert settings.model.backend == "openai"
    assert settings.endpoint.base_url == "http://127.0.0.1:8089/v1" and settings.endpoint.model == "gpt2-world"
    assert settings.server.ask_batch == 1 and settings.tell.parametric == "off"  # a served model edits no weights
    path.write_text(_config(None, 0.0))
    plain = load_settings(path)
    assert plain.model.backend == "hf" and plain.server.ask_expect_ms == 0.0


def test_modes_are_kept_by_name_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    names = [m.name for m in _modes(tmp_path, None, None, None)]
    assert names == ["one_at_a_time", "batched_fixed_window", "batched"]
    served = _modes(tmp_path, tmp_path / "base", "http://x/v1 m", "batched,served_batched,baseline")
    assert [m.name for m in served] == ["baseline", "batched", "served_batched"]
    assert served[2].endpoint == "http://x/v1 m" and served[1].endpoint is None
    with pytest.raises(ValueError, match="served_batched"):
        _modes(tmp_path, None, None, "batched,served_batched")  # no --served: its modes do not exist
