"""Audit jobs: ``POST /v1/audits`` queues one, a background thread runs it, ``GET /v1/audits/{id}`` reports.

At most ``max_queued`` jobs are queued or running at once (one more is refused with
:class:`~tools.errors.RateLimitedError`, 429) and the newest ``keep`` finished jobs are remembered, so
neither the queue nor the job table grows without bound.

A job runs :func:`eval.audit.run_audit` into ``<home>/server/audits/<id>/`` (its ``answers.jsonl`` stays
there) and keeps each setup's point metrics as its result. While it runs, ``progress`` holds each setup's
answers done and total (the runner reports them through :class:`JobProgress`). The runner is injectable so
tests need not load a second model.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from agent.server._schemas import AuditJobOut, AuditRequest
from tools.errors import FactagentError, NotFoundError, RateLimitedError

__all__ = ["AuditJobs", "AuditRunner", "JobProgress", "run_world_audit"]

logger = logging.getLogger(__name__)


class JobProgress:
    """The audit runner's progress (``eval.audit.Progress``), kept on the job's view as ``{setup: [done, total]}``."""

    def __init__(self, update: Callable[[dict[str, list[int]]], None]) -> None:
        self._counts: dict[str, list[int]] = {}
        self._update = update
        self._lock = threading.Lock()

    def start(self, setup: str, total: int, done: int) -> None:
        with self._lock:
            self._counts[setup] = [done, total]
            self._update({k: list(v) for k, v in self._counts.items()})

    def advance(self, setup: str, n: int) -> None:
        with self._lock:
            done, total = self._counts.get(setup, [0, 0])
            self._counts[setup] = [min(done + n, total) if total else done + n, total]
            self._update({k: list(v) for k, v in self._counts.items()})


AuditRunner = Callable[[AuditRequest, Path, JobProgress], dict[str, dict[str, float]]]
"""Runs one audit into a directory, reporting progress, and returns ``{setup: {metric: value}}``."""


def run_world_audit(home: Path) -> AuditRunner:
    """The default runner: an audit of the home's stack on world questions (its memory is used as it is)."""

    def run(request: AuditRequest, out_dir: Path, progress: JobProgress) -> dict[str, dict[str, float]]:
        from eval.audit import AuditConfig, Outcomes, point_metrics, run_audit

        config = AuditConfig(
            dataset=request.dataset, setups=tuple(request.setups), grader=request.grader, home=str(home),
            limit=request.limit, resamples=200, prepare_memory=False,
        )  # fmt: skip
        done = run_audit(config, out_dir, progress=progress)
        return {
            setup: {k: float(v) for k, v in point_metrics(Outcomes.of(records)).items() if v is not None}
            for setup, records in done.records.items()
        }

    return run


@dataclass(frozen=True)
class _Job:
    owner: str
    view: AuditJobOut


class AuditJobs:
    """Queued, running and finished audit jobs of this process (``workers`` run at once)."""

    def __init__(
        self, root: Path, runner: AuditRunner, workers: int = 1, *, max_queued: int = 16, keep: int = 1_000
    ) -> None:
        if max_queued < 1 or keep < 1:
            raise ValueError("max_queued and keep must be at least 1")
        self.root = root
        self.runner = runner
        self.max_queued = max_queued
        self.keep = keep
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audit")
        self._jobs: dict[str, _Job] = {}  # insertion order: oldest first
        self._lock = threading.Lock()

    def submit(self, owner: str, request: AuditRequest) -> AuditJobOut:
        """Queue an audit for ``owner``; it starts when a worker is free.

        Raises:
            RateLimitedError: ``max_queued`` jobs are already queued or running (nothing is queued).
        """
        job_id = "a-" + secrets.token_hex(6)
        view = AuditJobOut(id=job_id, status="queued", created_at=datetime.now(UTC), request=request)
        with self._lock:
            pending = sum(j.view.status in ("queued", "running") for j in self._jobs.values())
            if pending >= self.max_queued:
                raise RateLimitedError(
                    f"the audit queue is full ({pending} jobs queued or running); retry later", retry_after=30.0
                )
            self._jobs[job_id] = _Job(owner, view)
            self._forget_old()
        self._pool.submit(self._run, job_id)
        return view

    def _forget_old(self) -> None:
        """Drop the oldest finished jobs beyond ``keep`` (their files stay on disk). Holds the lock."""
        finished = [i for i, j in self._jobs.items() if j.view.status in ("done", "failed")]
        for job_id in finished[: max(0, len(finished) - self.keep)]:
            del self._jobs[job_id]

    def get(self, job_id: str, user: str, admin: bool = False) -> AuditJobOut:
        """A job its owner (or an admin) may see.

        Raises:
            NotFoundError: no such job, or another user's.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (job.owner != user and not admin):
            raise NotFoundError(f"no audit job {job_id!r}")
        return job.view

    def listing(self, user: str, admin: bool = False) -> list[AuditJobOut]:
        """The jobs ``user`` may see (admins: everyone's), newest first."""
        with self._lock:
            return [j.view for j in reversed(self._jobs.values()) if admin or j.owner == user]

    def _set(self, job_id: str, **changes: object) -> None:
        with self._lock:
            job = self._jobs[job_id]
            self._jobs[job_id] = replace(job, view=job.view.model_copy(update=changes))

    def _run(self, job_id: str) -> None:
        self._set(job_id, status="running")
        request = self._jobs[job_id].view.request
        try:
            progress = JobProgress(lambda counts: self._set(job_id, progress=counts))
            result = self.runner(request, self.root / job_id, progress)
        except FactagentError as exc:
            logger.warning("audit job %s failed: %s", job_id, exc)
            self._set(job_id, status="failed", error=str(exc), finished_at=datetime.now(UTC))
            return
        except Exception as exc:  # a job thread must record its end; the traceback goes to the log
            logger.exception("audit job %s crashed", job_id)
            self._set(
                job_id, status="failed", error=f"internal error: {type(exc).__name__}", finished_at=datetime.now(UTC)
            )
            return
        self._set(job_id, status="done", result=result, finished_at=datetime.now(UTC))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
