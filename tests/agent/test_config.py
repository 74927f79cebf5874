"""Home directory resolution and config validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import CONFIG_FILE, load_settings, open_home, resolve_home
from tools.errors import ConfigError


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTAGENT_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_home() == tmp_path / "env"
    monkeypatch.delenv("FACTAGENT_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert resolve_home() == tmp_path / "user" / ".factagent"


def test_defaults_without_a_file(tmp_path: Path) -> None:
    home = open_home(tmp_path / "h")
    assert home.root.is_dir()
    assert home.settings.model.path == "" and home.settings.endpoint.max_retries == 3
    assert home.path("cache") == tmp_path / "h" / "cache" and home.path("cache").is_dir()
    with pytest.raises(ConfigError, match="unknown state directory"):
        home.path("elsewhere")


def test_valid_file(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(
        '[model]\npath = "/models/x"\n[endpoint]\nbase_url = "http://127.0.0.1:8000/v1"\ntimeout = 5\n'
    )
    settings = open_home(tmp_path).settings
    assert settings.model.path == "/models/x"
    assert settings.endpoint.timeout == 5.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model\npath = 1", "not valid TOML"),
        ("[model]\nweights = 'x'\n", "model.weights: Extra inputs are not permitted"),
        ("[endpoint]\ntimeout = -1\n", "endpoint.timeout"),
        ("[endpoint]\nmax_retries = 'many'\n", "endpoint.max_retries"),
        ("[surprise]\nx = 1\n", "surprise"),
    ],
)
def test_invalid_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / CONFIG_FILE
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILE
    path.write_bytes(b"[model]\npath = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings(path)


def test_home_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        open_home(target)
