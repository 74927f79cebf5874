"""API keys, roles and namespaces (no server needed); the CLI commands; the package's light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import agent.server
from agent.cli import main
from agent.server import KeyRing, Principal, hash_key
from tests.conftest import REPO
from tools.errors import ConfigError, PermissionDeniedError

KEYS_TOML = f"""
[[keys]]
key = "plain-key-123"
user = "ann"
role = "editor"
namespaces = ["ann", "ann-work"]
shared = ["world"]

[[keys]]
key_sha256 = "{hash_key("hashed-key-456")}"
user = "boss"
role = "admin"
namespaces = ["boss"]
shared_write = ["ann"]
requests_per_minute = 5
"""


def test_keys_file_plain_and_hashed(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(KEYS_TOML)
    ring = KeyRing.load(path)
    ann = ring.authenticate("plain-key-123")
    boss = ring.authenticate("hashed-key-456")
    assert ann is not None and ann.user == "ann" and ann.readable == ("ann", "ann-work", "world")
    assert boss is not None and boss.role == "admin" and boss.requests_per_minute == 5 and "ann" in boss.writable
    assert ring.authenticate("wrong") is None and ring.authenticate(None) is None
    assert ring.users == {"ann": "editor", "boss": "admin"}
    assert ann.key_id and ann.key_id not in KEYS_TOML  # a digest prefix, never the key


@pytest.mark.parametrize(
    "text",
    [
        '[[keys]]\nuser = "x"\nnamespaces = ["x"]\n',  # no secret
        '[[keys]]\nkey = "k1234567"\nuser = "x"\nrole = "god"\nnamespaces = ["x"]\n',  # bad role
        '[[keys]]\nkey = "k1234567"\nuser = "x"\nnamespaces = ["bad ns"]\n',  # bad namespace
        '[[keys]]\nkey = "k1234567"\nuser = "x"\nnamespaces = ["x"]\nextra = 1\n',  # unknown field
        '[[keys]]\nkey = "k1234567"\nuser = "x"\nnamespaces = ["x"]\n' * 2,  # the same key twice
        "not toml [",
    ],
)
def test_bad_keys_files_are_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"keys\.toml"):
        KeyRing.load(path)


def test_json_keys_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"key": "json-key-789", "user": "j", "namespaces": ["j"]}]}')
    who = KeyRing.load(path).authenticate("json-key-789")
    assert who is not None and who.role == "reader" and who.writable == ()
    assert KeyRing.load(tmp_path / "absent.toml").authenticate("json-key-789") is None


def test_namespace_checks_do_not_reveal_existence() -> None:
    who = Principal("ann", "editor", ("ann",), shared=("world",))
    assert who.check(None) == "ann" and who.check("world") == "world"
    assert who.search_namespaces(None) == ["ann", "world"]
    with pytest.raises(PermissionDeniedError) as a:
        who.check("bob")
    with pytest.raises(PermissionDeniedError) as b:
        who.check("never-existed")
    assert str(a.value) == str(b.value)
    with pytest.raises(PermissionDeniedError, match="may not change"):
        who.check("world", write=True)


def test_cli_has_serve_and_mcp(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("serve", "mcp"):
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--http" in out


def test_package_api_is_sorted_and_light() -> None:
    assert agent.server.__all__ == sorted(agent.server.__all__)
    heavy = "('fastapi', 'mcp', 'uvicorn', 'torch')"
    code = f"import sys, agent.server, agent.client; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
