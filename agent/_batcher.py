"""Dynamic batching of asks: concurrent questions answered together, as an inference server batches requests.

Callers :meth:`AskBatcher.submit` a question and get a :class:`concurrent.futures.Future`. One worker thread
takes the oldest waiting question, gathers whatever else arrives within ``max_wait_s`` of it (up to
``max_batch`` questions), and answers them with one call of the batch function: one embedding call, one
batched ``generate`` and one batched ``score`` call for the whole batch. While a batch runs, new
questions queue; they form the next batch at once (they have waited already).

Expected company (``expect_wait_s`` > 0): closed-loop callers (clients that ask again as soon as they are
answered) come back together, but spread over more than a few ms, so a fixed short window splits them into
a part that runs and a rest that waits for it, and the split repeats batch after batch. The batcher
therefore expects as many questions as were in the system when the last batch ended (its size plus those
queued meanwhile) and gathers up to that many, waiting at most ``expect_wait_s`` (never less than
``max_wait_s``) after the later of the last batch's end and the oldest's arrival; once that many are
queued the batch starts at once, so a lone caller (one expected) waits for no company at all. With no
batch answered yet, or ``expect_wait_s`` = 0, the plain ``max_wait_s`` window applies.

A batch that fails is answered again one question at a time, so one caller's failure is never another's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tools.errors import ServiceClosedError

__all__ = ["AskBatcher"]

logger = logging.getLogger(__name__)
Q = TypeVar("Q")
A = TypeVar("A")


@dataclass
class _Waiting(Generic[Q, A]):
    item: Q
    since: float
    future: Future[A] = field(default_factory=Future)


class AskBatcher(Generic[Q, A]):
    """Gathers submitted items into micro-batches for ``answer``.

    Args:
        answer: answers a batch, one result per item in order (may raise; see the module docstring).
        max_batch: items per batch at most (1: one at a time, in arrival order).
        max_wait_s: how long the oldest item waits for company before its batch starts.
        expect_wait_s: the longest wait for expected company (see the module docstring; 0: off).

    Example:
        >>> batcher = AskBatcher(lambda xs: [x * 2 for x in xs], max_batch=8, max_wait_s=0.005)
        >>> batcher.submit(21).result()
        42
        >>> batcher.close()
    """

    def __init__(
        self,
        answer: Callable[[Sequence[Q]], Sequence[A]],
        max_batch: int = 16,
        max_wait_s: float = 0.005,
        expect_wait_s: float = 0.0,
    ):
        if max_batch < 1 or max_wait_s < 0 or expect_wait_s < 0:
            raise ValueError("max_batch must be >= 1, max_wait_s and expect_wait_s >= 0")
        self._answer = answer
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.expect_wait_s = expect_wait_s
        self._expect = 0  # questions in the system when the last batch ended (0: none answered yet)
        self._ended_at = 0.0  # when it ended (time.monotonic)
        self._queue: deque[_Waiting[Q, A]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None
        self.batches = 0  # batches answered (for tests and benchmarks)

    def submit(self, item: Q) -> Future[A]:
        """Queue ``item``; the future resolves to its answer (or raises what answering it raised).

        Raises:
            ServiceClosedError: the batcher was closed.
        """
        waiting: _Waiting[Q, A] = _Waiting(item, time.monotonic())
        with self._cond:
            if self._closed:
                raise ServiceClosedError("the service is shutting down")
            if self._worker is None:  # started on first use: building a service starts no thread
                self._worker = threading.Thread(target=self._loop, name="ask-batcher", daemon=True)
                self._worker.start()
            self._queue.append(waiting)
            self._cond.notify_all()
        return waiting.future

    def close(self) -> None:
        """Stop after the queued items are answered."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout=60)

    def _next_batch(self) -> list[_Waiting[Q, A]] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            want, deadline = self.max_batch, self._queue[0].since + self.max_wait_s
            if self.expect_wait_s > 0 and self._expect > 0:
                # from the later of the oldest's arrival and the last batch's end: those queued while it ran
                # have waited already, but the callers it answered are only now on their way back
                start = max(self._queue[0].since, self._ended_at)
                want, deadline = min(self.max_batch, self._expect), start + max(self.max_wait_s, self.expect_wait_s)
            while len(self._queue) < want and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            self.batches += 1
            try:
                results = list(self._answer([w.item for w in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} answers for {len(batch)} questions")
            except Exception as exc:  # not swallowed: retried alone, each caller gets its own outcome
                if len(batch) == 1:
                    self._ended(1)
                    batch[0].future.set_exception(exc)
                    continue
                logger.info("a batch of %d failed (%s); answering one at a time", len(batch), exc)
                self._ended(len(batch))
                for w in batch:
                    self._answer_alone(w)
                continue
            self._ended(len(batch))  # before the callers are answered: their next questions are not counted twice
            for w, result in zip(batch, results, strict=True):
                w.future.set_result(result)

    def _ended(self, size: int) -> None:
        """Expect the batch's callers back, with those that queued while it ran."""
        with self._cond:
            self._expect, self._ended_at = size + len(self._queue), time.monotonic()

    def _answer_alone(self, waiting: _Waiting[Q, A]) -> None:
        try:
            waiting.future.set_result(self._answer([waiting.item])[0])
        except Exception as exc:  # not swallowed: handed to the caller it belongs to
            waiting.future.set_exception(exc)
