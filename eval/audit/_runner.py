"""Running an audit: every question through every setup, graded, written as it goes, resumable.

Output directory layout::

    DIR/run.json        the settings of the run (a resumed run must match them: AuditConfig.fingerprint)
    DIR/answers.jsonl   one graded Record per (setup, question), appended and flushed batch by batch
    DIR/report.json     metrics per setup, overall and per category, with intervals (eval.audit._report)
    DIR/report.md, DIR/report.html

An interrupted run (Ctrl-C, a crash, an unreachable judge) keeps every batch written so far; running the same
command again skips those (setup, question) pairs. A torn last line is dropped and redone.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from eval.audit._datasets import Dataset, load_dataset, sample_evenly
from eval.audit._errors import AuditError, JudgeUnavailableError, ResumeMismatchError
from eval.audit._stack import (
    AuditConfig,
    Stack,
    build_stack,
    check_setups,
    is_world_dataset,
    prepare_world_memory,
)
from eval.audit._types import AuditQuestion, Grade, Record

__all__ = ["AnswerLog", "AuditRun", "Progress", "answer_chunk", "plan_chunks", "run_audit"]

logger = logging.getLogger(__name__)
Engine = Literal["local", "ray"]
Chunk = tuple[str, tuple[AuditQuestion, ...]]  # (setup name, questions)


class Progress(Protocol):
    """Progress reporting: ``start`` once per setup with its total and what is already done, then ``advance``."""

    def start(self, setup: str, total: int, done: int) -> None: ...

    def advance(self, setup: str, n: int) -> None: ...


class _Quiet:
    def start(self, setup: str, total: int, done: int) -> None:
        logger.info("%s: %d of %d answers already done", setup, done, total)

    def advance(self, setup: str, n: int) -> None:
        pass


@dataclass(frozen=True)
class AuditRun:
    """A finished run: the dataset audited and the records of each setup, in dataset order."""

    config: AuditConfig
    dataset: Dataset
    records: dict[str, list[Record]]


class AnswerLog:
    """``answers.jsonl``: graded records, appended and flushed to disk batch by batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[tuple[str, str], Record]:
        """Records already written, by (setup, question id). A torn last line is cut off the file.

        Raises:
            AuditError: a line other than the last is corrupt.
        """
        if not self.path.is_file():
            return {}
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        done: dict[tuple[str, str], Record] = {}
        offset = 0
        for lineno, line in enumerate(lines, 1):
            last = lineno == len(lines)
            if line.strip():
                try:
                    record = Record.from_json(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    if last or (lineno == len(lines) - 1 and not lines[-1].strip()):
                        logger.warning("%s line %d is torn (an interrupted write): redoing it", self.path, lineno)
                        with self.path.open("r+b") as handle:
                            handle.truncate(offset)
                        break
                    raise AuditError(
                        f"{self.path} line {lineno} is corrupt ({exc}); remove the line or the file"
                    ) from exc
                done[(record.setup, record.question_id)] = record
            offset += len(line) + 1
        return done

    def append(self, records: Sequence[Record]) -> None:
        """Write ``records`` and flush them to disk."""
        with self.path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def answer_chunk(stack: Stack, setup: str, questions: Sequence[AuditQuestion]) -> list[Record]:
    """Answer, grade and claim-check one batch of questions with one setup (both engines call this)."""
    answers = stack.setups[setup].answer(questions)
    grades = stack.grader.grade(questions, answers)
    records = []
    for q, a, g in zip(questions, answers, grades, strict=True):
        claims = supported = 0
        if stack.claims is not None and g is not Grade.NOT_ATTEMPTED and stack.claims.is_long(a.text):
            support = stack.claims.check(a.text)
            claims, supported = len(support.claims), sum(support.supported)
        records.append(Record(setup, q.id, q.category, q.answerable, a, g, claims, supported))
    return records


def plan_chunks(
    questions: Sequence[AuditQuestion], setups: Sequence[str], done: set[tuple[str, str]], batch_size: int
) -> list[Chunk]:
    """The batches still to answer, setup by setup, in dataset order."""
    chunks: list[Chunk] = []
    for setup in setups:
        todo = [q for q in questions if (setup, q.id) not in done]
        chunks += [(setup, tuple(todo[i : i + batch_size])) for i in range(0, len(todo), batch_size)]
    return chunks


def _check_run_file(out_dir: Path, config: AuditConfig) -> None:
    path = out_dir / "run.json"
    wanted = config.fingerprint()
    if path.is_file():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ResumeMismatchError(f"{path} is not JSON; use a new --out directory") from exc
        if found != wanted:
            diff = sorted(k for k in set(found) | set(wanted) if found.get(k) != wanted.get(k))
            raise ResumeMismatchError(
                f"{out_dir} holds a run with other settings ({', '.join(diff)}); use a new --out directory"
            )
        return
    path.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _prepare(config: AuditConfig) -> None:
    """Load the world into the working memory once, before any worker opens it."""
    if not (config.prepare_memory and is_world_dataset(config.dataset) and config.needs_memory()):
        return
    from agent.config import open_home
    from agent.wiring import open_working_memory
    from eval.audit._world_zh import prepare_world_zh_memory
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR

    world = load_world(DATA_DIR)
    with open_working_memory(open_home(config.home)) as wm:
        if config.dataset.startswith("world-zh:"):
            prepare_world_zh_memory(wm, world)
        else:
            prepare_world_memory(wm, world)


def run_audit(
    config: AuditConfig,
    out_dir: str | Path,
    *,
    engine: Engine = "local",
    workers: int = 1,
    progress: Progress | None = None,
    address: str | None = None,
) -> AuditRun:
    """Run (or resume) the audit ``config`` describes, writing ``answers.jsonl`` into ``out_dir``.

    Args:
        config: dataset, setups, grader and model (see :class:`AuditConfig`).
        out_dir: the run directory (created; an existing run in it is resumed).
        engine: ``local`` (this process, batch by batch) or ``ray`` (batches spread over ``workers`` Ray
            actors; the same records).
        workers: Ray actors with ``engine="ray"``.
        progress: told about each setup's total and each finished batch.
        address: with ``engine="ray"``, an existing Ray cluster to join (default: a local one for the run).

    Returns:
        The dataset and, per setup, its records in dataset order.

    Raises:
        AuditDatasetError, SetupUnavailableError, ResumeMismatchError: before any answer is written.
        JudgeUnavailableError, BackendError: mid-run; every batch written so far is kept for resuming.
    """
    check_setups(config)
    out = Path(out_dir)
    dataset = load_dataset(config.dataset, on_bad_row=config.on_bad_row)
    questions = sample_evenly(dataset.questions, config.limit)
    dataset = Dataset(dataset.name, questions, dataset.skipped)
    out.mkdir(parents=True, exist_ok=True)
    _check_run_file(out, config)
    log = AnswerLog(out / "answers.jsonl")
    done = log.load()
    ids = {q.id for q in questions}
    progress = progress or _Quiet()
    for setup in config.setups:
        progress.start(setup, len(questions), sum(1 for (s, qid) in done if s == setup and qid in ids))
    chunks = plan_chunks(questions, config.setups, set(done), config.batch_size)

    def collect(records: list[Record]) -> None:
        log.append(records)
        for record in records:
            done[(record.setup, record.question_id)] = record
        if records:
            progress.advance(records[0].setup, len(records))

    if chunks:
        _prepare(config)
        try:
            if engine == "ray":
                from eval.audit._ray import run_chunks_ray

                run_chunks_ray(config, chunks, workers=workers, collect=collect, address=address)
            else:
                with build_stack(config) as stack:
                    for setup, batch in chunks:
                        collect(answer_chunk(stack, setup, batch))
        except JudgeUnavailableError as exc:
            kept = sum(1 for (_, qid) in done if qid in ids)
            raise JudgeUnavailableError(
                f"{exc}; {kept} graded answers are kept in {log.path}: run the same command again to resume"
            ) from exc
    records = {s: [done[(s, q.id)] for q in questions] for s in config.setups}
    return AuditRun(config, dataset, records)
