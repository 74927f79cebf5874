"""Cold start (issue 30, part 4): CPU seconds from process start to the first answer of ``factagent ask``.

CPU time, not wall time: the machine is shared, and other processes' load stretches wall time but not the
CPU a start costs. Each measurement is a fresh child process; its CPU (user + system) is read from
``resource.getrusage(RUSAGE_CHILDREN)``. Next to the full ``factagent ask`` the same is measured for the
imports it needs (torch; the lean modules' ``tokenizers`` + ``safetensors``) and for the import the lean
runtime avoids (transformers' model code), so the share left to the project's own start-up is visible.
``--off-home`` (a copy of the home whose ``config.toml`` sets ``[runtime] lean = "off"``) measures the same
ask on transformers' models in the same rounds, as ``factagent_ask_lean_off``.

Example:
    PYTHONPATH=. .venv/bin/python bench/cold_start.py --home ~/.factagent --rounds 3 --off-home /tmp/off
    # one JSON object on stdout: median CPU seconds per step, the rounds, and the load average
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

QUESTION = "Who is the CEO of Nokia?"
STEPS = {
    "python": ["-c", "pass"],
    "import_torch": ["-c", "import torch"],
    "import_torch_lean": ["-c", "import torch, tokenizers, safetensors.torch, tools.lean"],
    "import_torch_transformers_models": ["-c", "import torch, transformers.modeling_utils"],
    "import_agent_cli": ["-c", "import agent.cli"],
    "factagent_help": ["-m", "agent", "--help"],  # the parser with every command registered, nothing run
}


def child_cpu(args: Sequence[str], env: dict[str, str]) -> float:
    """User + system CPU seconds of one child process running ``args`` to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(list(args), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(home: Path, rounds: int, off_home: Path | None = None) -> dict[str, Any]:
    """Median CPU seconds of each step and of ``factagent ask`` on ``home`` (and on ``off_home``, when given),
    over ``rounds`` fresh processes."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    commands = {name: [sys.executable, *args] for name, args in STEPS.items()}
    commands["factagent_ask"] = [sys.executable, "-m", "agent", "--home", str(home), "ask", QUESTION]
    if off_home is not None:
        commands["factagent_ask_lean_off"] = [sys.executable, "-m", "agent", "--home", str(off_home), "ask", QUESTION]
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            runs[name].append(child_cpu(cmd, env))
    return {
        "cpu_s": {name: round(statistics.median(xs), 2) for name, xs in runs.items()},
        "rounds": rounds,
        "load_avg": [round(x, 1) for x in os.getloadavg()],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, required=True, help="a home with the world loaded")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--off-home", type=Path, default=None, help='the same home with [runtime] lean = "off"')
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(measure(args.home, args.rounds, args.off_home)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
