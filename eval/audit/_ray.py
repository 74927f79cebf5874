"""``--engine ray``: the audit's batches spread over Ray actors, each with its own copy of the stack.

Each actor builds the setups and grader from the same :class:`AuditConfig` as the local engine and answers
whole batches with the same function (:func:`answer_chunk`), so the records are the ones a one-process run
writes; the driver appends them to ``answers.jsonl`` as they arrive (in completion order: resuming and the
report key records by setup and question, not by position). ``ray`` is imported here only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from eval._ray_session import ray_session, unwrap_ray_error
from eval.audit._stack import AuditConfig
from eval.audit._types import AuditQuestion, Record

__all__ = ["run_chunks_ray"]

logger = logging.getLogger(__name__)
_IN_FLIGHT_PER_ACTOR = 2  # one batch running, one queued: no actor waits for the driver


class _Worker:
    """A Ray actor: builds the stack once, then answers batches."""

    def __init__(self, config: AuditConfig) -> None:
        from eval.audit._stack import build_stack

        self._stack = build_stack(config)

    def answer(self, setup: str, questions: Sequence[AuditQuestion]) -> list[Record]:
        from eval.audit._runner import answer_chunk

        return answer_chunk(self._stack, setup, questions)

    def close(self) -> None:
        self._stack.close()


def run_chunks_ray(
    config: AuditConfig,
    chunks: Sequence[tuple[str, tuple[AuditQuestion, ...]]],
    *,
    workers: int,
    collect: Callable[[list[Record]], None],
    address: str | None = None,
) -> None:
    """Answer ``chunks`` on ``workers`` Ray actors, passing each batch's records to ``collect`` as it finishes.

    Joins the cluster at ``address``, else uses the Ray session already open in this process, else starts a
    local one with ``workers`` CPUs (and stops it at the end).

    Raises:
        ClusterError: ray is not installed, the cluster cannot be joined, or a worker died.
        FactagentError: what a worker raised (a judge failure, a model that does not load); batches collected
            before it stay collected, and the run resumes from them.
    """
    with ray_session(workers, address) as ray:
        actor_cls: Any = ray.remote(num_cpus=1)(_Worker)
        actors = [actor_cls.remote(config) for _ in range(min(workers, len(chunks)))]
        todo = list(chunks)
        pending: dict[Any, Any] = {}  # object ref -> actor

        def submit(actor: Any) -> None:
            setup, questions = todo.pop(0)
            pending[actor.answer.remote(setup, questions)] = actor

        try:
            for actor in actors:
                for _ in range(_IN_FLIGHT_PER_ACTOR):
                    if todo:
                        submit(actor)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                actor = pending.pop(ready[0])
                try:
                    records = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    raise unwrap_ray_error(exc, "answering an audit batch") from exc
                collect(records)
                if todo:
                    submit(actor)
        finally:
            for actor in actors:
                ray.kill(actor)
