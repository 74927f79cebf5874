"""The ``[tell]`` config section and the package's public API."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent.tell
from agent.config import CONFIG_FILE, Settings, load_settings
from tools.errors import ConfigError


def test_defaults_keep_old_config_files_loading(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text('[model]\npath = "/models/x"\n')
    tell = load_settings(tmp_path / CONFIG_FILE).tell
    assert (tell.default_role, tell.parametric, tell.edits_per_minute, tell.max_message_chars) == (
        "user",
        "off",
        30,
        4000,
    )
    assert tell.roles == {} and tell.rate_limit_exempt == ("admin", "trusted")


def test_a_tell_section(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(
        '[tell]\nroles = { alice = "admin", mallory = "untrusted" }\nparametric = "immediate"\nedits_per_minute = 5\n'
    )
    tell = load_settings(tmp_path / CONFIG_FILE).tell
    assert tell.roles == {"alice": "admin", "mallory": "untrusted"} and tell.parametric == "immediate"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tell]\nroles = { bob = "boss" }\n', "tell.roles.bob"),
        ('[tell]\nparametric = "sometimes"\n', "tell.parametric"),
        ("[tell]\nedits_per_minute = -1\n", "tell.edits_per_minute"),
        ("[tell]\nsurprise = 1\n", "tell.surprise"),
    ],
)
def test_bad_tell_sections(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path / CONFIG_FILE)


def test_public_api_is_sorted_and_importable() -> None:
    assert agent.tell.__all__ == sorted(agent.tell.__all__)
    assert all(getattr(agent.tell, name) is not None for name in agent.tell.__all__)
    assert Settings().tell.interpreter == "reader"
