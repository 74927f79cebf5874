"""The audit of one served model, standalone vs RAG vs the agent, against llama.cpp's real server (issue 24).

Runs where ``.ci/llama_server.sh`` installed llama-cpp-python and converted the reference model
(``FACTAGENT_LLAMA_GGUF``, set by ``.ci/run``); skipped elsewhere. A home configured with
``[model] backend = "openai"`` makes all three setups ask the served model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.inference_servers import REFERENCE_MODEL, cached_gguf, llama_available, llama_server
from eval.audit import Grade, run_audit, write_reports
from tests.eval.audit.conftest import audit_config
from tools.errors import BackendError

pytestmark = pytest.mark.slow
SETUPS = ("standalone", "rag", "agent")


def test_standalone_rag_and_agent_on_one_served_model(audit_home: Path, tmp_path: Path) -> None:
    gguf = cached_gguf()
    if not llama_available() or gguf is None:
        pytest.skip("llama-cpp-python is not installed here (bash .ci/llama_server.sh installs it)")
    home = tmp_path / "home"
    shutil.copytree(audit_home, home)  # the shared slice of the world, left as the other tests expect it
    out = tmp_path / "run"
    with llama_server(gguf) as srv:
        (home / "config.toml").write_text(
            f'[model]\nbackend = "openai"\npath = {json.dumps(str(REFERENCE_MODEL))}\n\n'
            f"[endpoint]\nbase_url = {json.dumps(srv.base_url)}\nmodel = {json.dumps(srv.model)}\n",
            encoding="utf-8",
        )
        run = run_audit(audit_config(home, setups=SETUPS, limit=12), out)
    report = write_reports(run, out)
    assert (out / "report.html").is_file() and set(report["setups"]) == set(SETUPS)
    for setup in SETUPS:
        records = run.records[setup]
        assert len(records) == 12
        assert all(r.answer.latency_s > 0 for r in records)

    def from_memory(setup: str) -> int:  # correct answers on facts only the memory holds
        return sum(r.grade is Grade.CORRECT for r in run.records[setup] if r.category != "known")

    assert any(r.answer.text.strip() for r in run.records["standalone"])
    assert from_memory("rag") > from_memory("standalone")
    # every setup asked the server: with it gone, the same audit is a typed error, not answers
    with pytest.raises(BackendError):
        run_audit(audit_config(home, setups=("standalone",), limit=8), tmp_path / "down")
