"""``factagent serve`` as a real process: keys from the home, the model loaded once, a graceful stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agent.client import FactagentClient
from agent.server._live import free_port
from tests.conftest import REPO

KEYS = '[[keys]]\nkey = "cli-key-0001"\nuser = "cleo"\nrole = "editor"\nnamespaces = ["cleo"]\nshared = ["world"]\n'


def test_factagent_serve_process(tmp_path: Path, loaded_home: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    (home / "server").mkdir()
    (home / "server" / "keys.toml").write_text(KEYS)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "agent", "--home", str(home), "serve", "--port", str(port)]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "factagent serve did not come up"
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        with FactagentClient(url, "cli-key-0001") as fa:
            told = fa.tell("The CEO of Wibble Co is Nia Sol.")
            assert told.status == "applied"
            assert "Nia Sol" in fa.ask("Who is the CEO of Wibble Co?").text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/v1" in out
