"""The audit job queue is bounded (issue 16, item 7): a full queue refuses with 429, finished jobs are capped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.server._jobs import AuditJobs, JobProgress
from agent.server._schemas import AuditRequest
from tools.errors import NotFoundError, RateLimitedError


def _wait_done(jobs: AuditJobs, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while jobs.get(job_id, "u").status not in ("done", "failed"):
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.01)


def test_a_full_queue_refuses_and_finished_jobs_are_forgotten_past_keep(tmp_path: Path) -> None:
    gate = threading.Event()

    def runner(request: AuditRequest, out_dir: Path, progress: JobProgress) -> dict[str, dict[str, float]]:
        gate.wait(10)
        return {"standalone": {"accuracy": 1.0}}

    jobs = AuditJobs(tmp_path, runner, workers=1, max_queued=2, keep=2)
    try:
        first = jobs.submit("u", AuditRequest())
        second = jobs.submit("u", AuditRequest())
        with pytest.raises(RateLimitedError) as full:
            jobs.submit("u", AuditRequest())
        assert full.value.retry_after > 0 and "queue is full" in str(full.value)
        gate.set()
        _wait_done(jobs, first.id)
        _wait_done(jobs, second.id)
        third = jobs.submit("u", AuditRequest())  # room again once jobs finish
        _wait_done(jobs, third.id)
        fourth = jobs.submit("u", AuditRequest())  # the oldest finished job is dropped past keep=2
        _wait_done(jobs, fourth.id)
        with pytest.raises(NotFoundError):
            jobs.get(first.id, "u")
        assert jobs.get(fourth.id, "u").status == "done"
    finally:
        gate.set()
        jobs.close()


def test_a_running_job_shows_each_setups_progress(tmp_path: Path) -> None:
    halfway, finish = threading.Event(), threading.Event()

    def runner(request: AuditRequest, out_dir: Path, progress: JobProgress) -> dict[str, dict[str, float]]:
        progress.start("standalone", 10, 2)  # two answers already on disk (a resumed run)
        progress.advance("standalone", 3)
        progress.start("rag", 10, 0)
        halfway.set()
        finish.wait(10)
        progress.advance("rag", 10)
        return {"rag": {"accuracy": 1.0}}

    jobs = AuditJobs(tmp_path, runner, workers=1)
    try:
        job = jobs.submit("u", AuditRequest())
        assert halfway.wait(10)
        running = jobs.get(job.id, "u")
        assert running.status == "running"
        assert running.progress == {"standalone": [5, 10], "rag": [0, 10]}
        finish.set()
        _wait_done(jobs, job.id)
        assert jobs.get(job.id, "u").progress == {"standalone": [5, 10], "rag": [10, 10]}
    finally:
        finish.set()
        jobs.close()
