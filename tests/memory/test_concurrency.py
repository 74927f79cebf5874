"""Concurrency: threads in one process, two writer processes on one directory, and a writer killed by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from memory import IndexConfig, Scope, VectorMemory
from tests.conftest import REPO
from tests.memory.fakes import HashEmbedder


def _child(root: Path, prefix: str, count: int, save_every: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.memory._child", str(root), prefix, str(count), "--save-every", str(save_every)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_all_there(memory: VectorMemory, texts_by_id: dict[str, str]) -> None:
    assert memory.index_size == memory.count(versions=True)
    for item_id, text in texts_by_id.items():
        assert memory.get(item_id).text == text
    for item_id, text in list(texts_by_id.items())[::7]:
        assert memory.search(text, k=1)[0].item.id == item_id


def test_threads_write_and_search_concurrently(memory: VectorMemory) -> None:
    def work(thread: int) -> dict[str, str]:
        written = {}
        for i in range(25):
            text = f"thread{thread} note{i}"
            item = memory.add(text, scope=Scope(run_id=f"t{thread}"))
            written[item.id] = text
            if i % 5 == 0:
                text = f"thread{thread} note{i} revised"
                written[memory.update(item.id, text).id] = text
                memory.search(text, k=3)
        return written

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))
    texts_by_id = {k: v for result in results for k, v in result.items()}
    assert len(texts_by_id) == 200
    assert memory.count() == 200 and memory.count(versions=True) == 240
    _assert_all_there(memory, texts_by_id)


def test_two_processes_write_one_memory(tmp_path: Path) -> None:
    parent = VectorMemory.open(tmp_path, HashEmbedder(), IndexConfig(save_every=7))
    texts_by_id = {parent.add("parent record first").id: "parent record first"}
    children = {name: _child(tmp_path, name, 60, save_every=7) for name in ("alpha", "beta")}
    i = 0
    while any(child.poll() is None for child in children.values()) and i < 200:
        text = f"parent record {i}"
        texts_by_id[parent.add(text).id] = text  # interleaved with the children's writes
        parent.search("alpha record", k=3)
        i += 1
    for name, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        ids = out.split()
        assert len(ids) == 60
        texts_by_id.update({item_id: f"{name} record {n}" for n, item_id in enumerate(ids)})
    _assert_all_there(parent, texts_by_id)  # visible here without reopening: caught up from the log
    assert parent.count(Scope(agent_id="alpha")) == parent.count(Scope(agent_id="beta")) == 60
    parent.close()
    reopened = VectorMemory.open(tmp_path, HashEmbedder())
    _assert_all_there(reopened, texts_by_id)
    assert reopened.count(versions=True) == len(texts_by_id)
    reopened.close()


def test_sigkill_loses_no_acknowledged_write(tmp_path: Path) -> None:
    child = _child(tmp_path, "kill", 100_000, save_every=5)  # saves the index file often: may die mid-save
    assert child.stdout is not None
    acknowledged = []
    for line in child.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 120:
            break
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    embedder = HashEmbedder()
    memory = VectorMemory.open(tmp_path, embedder)
    assert memory.count(versions=True) >= len(acknowledged)
    _assert_all_there(memory, {item_id: f"kill record {n}" for n, item_id in enumerate(acknowledged)})
    assert embedder.texts == 120 // 7 + 1  # only the search queries were embedded
    memory.flush()
    assert not list((tmp_path / "index").glob("*.tmp"))  # a save cut short leaves no debris behind
    memory.close()
