"""Crash and concurrency safety of the working memory as a whole: SQLite, FAISS index and KG agree.

Child processes (tests/agent/_writer_child.py) write a memory item and its KG assertion in one transaction.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from agent.config import open_home
from agent.wiring import WorkingMemory, open_working_memory
from memory import Scope
from tests.memory.fakes import HashEmbedder

REPO = Path(__file__).resolve().parents[2]


def _child(home: Path, prefix: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.agent._writer_child", str(home), prefix, str(count)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_stores_agree(wm: WorkingMemory, prefix: str, acknowledged: set[int]) -> None:
    items = wm.memory.count(scope=Scope(user_id=prefix))
    assertions = wm.graph.facts(relation="company_ceo")
    mine = [a for a in assertions if a.who == prefix]
    assert items == len(mine), "a memory item without its KG assertion (or the reverse)"
    edits = {a.edit_id for a in mine}
    assert {f"{prefix}-{i}" for i in acknowledged} <= edits, "an acknowledged write was lost"
    assert wm.memory.index_size == wm.memory.count(versions=True), "FAISS index and database disagree"
    for i in sorted(acknowledged)[-3:]:
        hits = wm.memory.search(
            f"The CEO of {prefix} company {i} is {prefix} person {i}.", k=1, scope=Scope(user_id=prefix)
        )
        assert hits and hits[0].item.edit_id == f"{prefix}-{i}"


def test_sigkill_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child = _child(home, "k", 100_000)
    acknowledged: set[int] = set()
    assert child.stdout is not None
    for line in child.stdout:
        acknowledged.add(int(line.split()[1]))
        if len(acknowledged) >= 400:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with open_working_memory(open_home(home), embedder=HashEmbedder(384)) as wm:
        _assert_stores_agree(wm, "k", acknowledged)


def test_two_processes_writing_the_same_files_lose_no_update(tmp_path: Path) -> None:
    home = tmp_path / "home"
    open_working_memory(open_home(home), embedder=HashEmbedder(384)).close()  # create the files first
    children = {prefix: _child(home, prefix, 200) for prefix in ("a", "b")}
    for prefix, child in children.items():
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert out.count("ok ") == 200, prefix
    with open_working_memory(open_home(home), embedder=HashEmbedder(384)) as wm:
        for prefix in children:
            _assert_stores_agree(wm, prefix, set(range(200)))
        assert len(wm.graph.facts(relation="company_ceo")) == 400


def test_threads_writing_memory_and_kg_lose_no_update(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from kg import Provenance
    from memory import Triple

    with open_working_memory(open_home(tmp_path / "home"), embedder=HashEmbedder(384)) as wm:

        def write(prefix: str) -> None:
            for i in range(40):
                triple = Triple(f"{prefix} company {i}", "company_ceo", f"{prefix} person {i}")
                with wm.transaction():
                    wm.memory.add(
                        f"The CEO of {triple.subject} is {triple.object}.",
                        scope=Scope(user_id=prefix),
                        triple=triple,
                        edit_id=f"{prefix}-{i}",
                    )
                    wm.graph.add(triple, Provenance(who=prefix, edit_id=f"{prefix}-{i}"))

        prefixes = ["t0", "t1", "t2", "t3"]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(write, prefixes))
        for prefix in prefixes:
            _assert_stores_agree(wm, prefix, set(range(40)))
