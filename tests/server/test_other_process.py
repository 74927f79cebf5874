"""Several processes on one home (issue 16, item 5): a running server answers a fact another process told."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx
import pytest

from tests.conftest import REPO
from tests.server.conftest import Served, key

QUESTION = "Who is the CEO of Crossproc Labs?"
CHAT_ARGS = ("--user", "alice", "--namespace", "alice")


@pytest.mark.slow  # a second process loads the models
def test_a_fact_told_by_cli_chat_is_answered_from_the_kg_by_a_running_server(
    serve: Callable[..., AbstractContextManager[Served]],
) -> None:
    headers = {"Authorization": f"Bearer {key('alice')}"}
    with serve() as s:
        before = httpx.post(f"{s.url}/v1/ask", json={"question": QUESTION}, headers=headers, timeout=60).json()
        assert before["action"] != "kg"  # the server has indexed the name now (as unknown)
        env = {"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": os.environ["PATH"]}
        chat = subprocess.run(
            [sys.executable, "-m", "agent", "--home", str(s.home.root), "chat", *CHAT_ARGS],
            input="The CEO of Crossproc Labs is Uma Vance.\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=str(REPO),
            timeout=300,
        )
        assert chat.returncode == 0, chat.stderr[-2000:]
        assert "Uma Vance" in chat.stdout
        after = httpx.post(f"{s.url}/v1/ask", json={"question": QUESTION}, headers=headers, timeout=60).json()
        assert after["action"] == "kg" and after["text"] == "Uma Vance"
        history = httpx.get(f"{s.url}/v1/history", params={"subject": "Crossproc Labs"}, headers=headers).json()
        assert history["edits"]
