"""Cold start (issue 30): ``factagent ask`` imports nothing it does not use, the bare CLI no model stack.

A fresh process answers one question on a fresh home and reports which heavy optional packages it imported.
sentence-transformers (and the scikit-learn / peft / datasets it drags in) is replaced by the plain
path, ONNX Runtime is only for ``[embedder] backend = "onnx*"``, and httpx only for a served model; and with
``[runtime] lean = "auto"`` GPT-2 and MiniLM run on :mod:`tools.lean`, so ``transformers`` is not imported at
all. Each would add to the seconds of CPU a new process spends before its first answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_ON_THE_ASK_PATH = ("datasets", "httpx", "onnxruntime", "peft", "sentence_transformers", "sklearn", "transformers")
_CHILD = """
import contextlib, io, json, sys
from agent.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = main(["--home", sys.argv[1], "ask", "Who is the CEO of Nokia?", "--json"])
loaded = sorted(name for name in {m.partition(".")[0] for m in sys.modules} if name in sys.argv[2].split(","))
print(json.dumps({"rc": rc, "answer": json.loads(out.getvalue()), "loaded": loaded}))
"""


def test_ask_in_a_fresh_process_imports_no_optional_heavy_package(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", _CHILD, str(tmp_path / "home"), ",".join(NOT_ON_THE_ASK_PATH)]
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0 and report["answer"]["action"]  # it really answered
    assert report["loaded"] == []


def test_building_the_cli_parser_imports_no_model_stack() -> None:
    code = (
        "import sys; from agent.cli import _parser; _parser(); "
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # `factagent --help` and commands that load no model
