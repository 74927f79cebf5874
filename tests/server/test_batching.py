"""Asks batched across callers (issue 30): the same answers as one at a time, in fewer model calls."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest

from agent import Answer
from agent._batcher import AskBatcher
from agent.server import Principal
from agent.server._service import Service
from tests.server.conftest import Served
from tools.errors import InvalidInputError, NotFoundError, ServiceClosedError

ALICE = Principal("alice", "editor", ("alice",), shared=("world",))
BOB = Principal("bob", "editor", ("bob",), shared=("world",))
ROOT = Principal("root", "admin", ("admin",), shared=("world",))
QUESTIONS = [
    (ALICE, "Who is the CEO of Qantas?"),
    (BOB, "Who is the mother of Isaac Newton?"),
    (ALICE, "Where is Acme Corp based?"),
    (BOB, "Who is the CEO of Lockstep Ltd?"),
    (ALICE, "Which university did Pivae Rolvrind attend?"),
    (BOB, "Who is the CEO of Qantas?"),
]


def _same(a: Answer, b: Answer) -> bool:
    return (a.text, a.action, a.citations, a.model_calls) == (b.text, b.action, b.citations, b.model_calls) and abs(
        a.confidence - b.confidence
    ) < 1e-4


def test_batched_answers_equal_one_at_a_time(serve: Callable[..., AbstractContextManager[Served]]) -> None:
    with serve() as s:
        told = "The CEO of Lockstep Ltd is Ana Bell."
        one = Service(s.agent, ask_batch=1, ask_wait_s=0.0)
        one.tell(ALICE, told)  # alice's own fact: bob must not see it in his batch-mates' answers
        alone = [one.ask(who, q) for who, q in QUESTIONS]
        one.close()

        batched = Service(s.agent, ask_batch=16, ask_wait_s=0.5)  # a long wait: all six form one batch
        before = s.agent.work()
        got: dict[int, Answer] = {}
        threads = [
            threading.Thread(target=lambda i=i, w=w, q=q: got.__setitem__(i, batched.ask(w, q)))
            for i, (w, q) in enumerate(QUESTIONS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        work = s.agent.work() - before
        batched.close()

        weights = Service(s.agent)  # as with [tell] parametric on: writes also hold the model's lock
        weights._writes_weights = True
        failed: list[BaseException] = []

        def undo() -> None:
            try:
                weights.rollback_detox(ROOT, "no-such-edit")
            except NotFoundError as exc:
                failed.append(exc)

        worker = threading.Thread(target=undo, daemon=True)
        worker.start()
        worker.join(30)
        assert not worker.is_alive() and failed  # the model's lock is taken once, not twice (no deadlock)
    assert len(got) == len(QUESTIONS)
    assert all(_same(got[i], alone[i]) for i in range(len(QUESTIONS))), [
        (got[i].text, alone[i].text) for i in range(len(QUESTIONS))
    ]
    assert work.asks == len(QUESTIONS) and work.batches < len(QUESTIONS)  # shared micro-batches
    assert work.model_batches <= 2 * work.batches and work.embed_batches <= work.batches


def test_a_failing_batch_is_answered_one_by_one_and_close_refuses() -> None:
    def answer(xs: Sequence[int]) -> list[int]:
        if 0 in xs:
            raise InvalidInputError("zero")
        return [10 // x for x in xs]

    batcher: AskBatcher[int, int] = AskBatcher(answer, max_batch=8, max_wait_s=0.2)
    futures = [batcher.submit(x) for x in (5, 0, 2)]
    assert futures[0].result(10) == 2 and futures[2].result(10) == 5
    with pytest.raises(InvalidInputError):
        futures[1].result(10)
    batcher.close()
    with pytest.raises(ServiceClosedError):
        batcher.submit(1)
    with pytest.raises(ValueError):
        AskBatcher[int, int](answer, max_batch=0)


def _recording(sizes: list[int], gate: threading.Event | None = None) -> Callable[[Sequence[int]], list[int]]:
    started = threading.Event()

    def answer(xs: Sequence[int]) -> list[int]:
        sizes.append(len(xs))
        started.set()
        if gate is not None and len(sizes) == 1:
            assert gate.wait(10)
        return [x * 2 for x in xs]

    answer.started = started  # type: ignore[attr-defined]
    return answer


def test_expected_company_merges_callers_split_by_a_running_batch() -> None:
    # A runs alone; B and C queue while it runs; A's caller comes back as D: B, C and D form one batch
    sizes: list[int] = []
    gate = threading.Event()
    answer = _recording(sizes, gate)
    batcher: AskBatcher[int, int] = AskBatcher(answer, max_batch=8, max_wait_s=0.0, expect_wait_s=1.0)
    a = batcher.submit(1)
    assert answer.started.wait(10)  # type: ignore[attr-defined]
    rest = [batcher.submit(2), batcher.submit(3)]
    time.sleep(1.5)  # B and C wait longer than expect_wait_s: the wait for D counts from A's end
    gate.set()
    assert a.result(10) == 2
    rest.append(batcher.submit(4))
    assert [f.result(10) for f in rest] == [4, 6, 8]
    assert sizes == [1, 3]
    batcher.close()


def test_without_expected_company_the_split_repeats() -> None:
    sizes: list[int] = []
    gate = threading.Event()
    answer = _recording(sizes, gate)
    batcher: AskBatcher[int, int] = AskBatcher(answer, max_batch=8, max_wait_s=0.0)
    a = batcher.submit(1)
    assert answer.started.wait(10)  # type: ignore[attr-defined]
    rest = [batcher.submit(2), batcher.submit(3)]
    gate.set()
    assert a.result(10) == 2
    rest[-1].result(10)
    rest.append(batcher.submit(4))
    assert [f.result(10) for f in rest] == [4, 6, 8]
    assert sizes == [1, 2, 1]
    batcher.close()


def test_a_lone_expected_caller_waits_for_no_company() -> None:
    sizes: list[int] = []
    batcher: AskBatcher[int, int] = AskBatcher(_recording(sizes), max_batch=8, max_wait_s=1.0, expect_wait_s=5.0)
    assert batcher.submit(1).result(10) == 2  # no batch answered yet: the plain 1 s window
    t0 = time.monotonic()
    assert batcher.submit(2).result(10) == 4  # one expected, one queued: it starts at once
    assert time.monotonic() - t0 < 0.5
    assert sizes == [1, 1]
    batcher.close()
    with pytest.raises(ValueError):
        AskBatcher[int, int](lambda xs: list(xs), expect_wait_s=-1.0)


def test_serving_shortens_the_switch_interval_and_restores_it(serve: Callable[..., Any]) -> None:
    before = sys.getswitchinterval()
    with serve():
        assert sys.getswitchinterval() == pytest.approx(0.001)  # [server] switch_interval_ms = 1
    assert sys.getswitchinterval() == pytest.approx(before)
