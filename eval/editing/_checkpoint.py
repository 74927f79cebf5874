"""Resumable edit-bench runs: the state of a sequential or batched run saved every few edits, and loaded back.

A long sequential run (T=1000 in batches of 100: hours on two cores) is saved under a checkpoint directory
after an edit call once at least ``every`` edits were made since the last save, and after each T is scored::

    DIR/state.json      the command's fingerprint, the rows of the T values already scored, the T in progress,
                        the cases edited in it, their edit seconds so far, the RNG states (Python, NumPy, torch)
    DIR/model-<done>/   the edited model of the T in progress (``tools.edit.save_edited``: weights, adapters,
                        journal), absent at a T's start

The state file is replaced atomically after the model directory it names is complete, so a run killed at any
point leaves the previous consistent state. Running the same command with the same directory loads the edited
model, restores the RNG states and goes on with the next case; the rows equal an uninterrupted run's (except
``seconds_per_edit``, which adds up the edit time of each part). A finished run's directory gives its rows
again without editing.

The fingerprint holds everything that decides the rows: method, model directory, T values, ``n``, mode, batch
size, selection and seed, hyperparameters, generation lengths, and the ids and requests of the cases chosen. A
directory written by a different command raises :class:`~tools.errors.CheckpointMismatchError` (nothing is
loaded or changed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.editing._metrics import CaseLike
from tools.errors import CheckpointMismatchError, InvalidInputError
from tools.lm import LocalLanguageModel

__all__ = ["BenchCheckpoint", "RunState", "fingerprint"]
logger = logging.getLogger(__name__)
FORMAT = 1
STATE = "state.json"


def fingerprint(settings: Mapping[str, Any], cases: Sequence[CaseLike]) -> dict[str, Any]:
    """The JSON identity of a run: its ``settings`` (JSON-able values, others by ``str``) and a hash of the
    chosen cases (ids, prompts, subjects, targets, in order)."""
    digest = hashlib.sha256()
    for case in cases:
        r = case.request
        digest.update(json.dumps([case.id, r.prompt, r.subject, r.target_new, r.target_old]).encode())
    out = json.loads(json.dumps(dict(settings), sort_keys=True, default=str))
    out["cases"] = digest.hexdigest()
    out["n_cases"] = len(cases)
    return out


@dataclass
class RunState:
    """Where a run stands: the rows of finished T values, the T in progress (index into the plan), the cases
    edited in it and their edit seconds; ``model`` is the edited model's directory name (``None``: unedited)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    t_index: int = 0
    done: int = 0
    seconds: float = 0.0
    model: str | None = None
    rng: dict[str, Any] | None = None


def _rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU, and CUDA when present) RNG states as JSON values."""
    py = random.getstate()
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


class BenchCheckpoint:
    """The checkpoint directory of one edit-bench run (see the module docstring).

    Args:
        directory: where the state lives (created on the first save).
        every: save after an edit call once at least this many edits were made since the last save.

    Raises:
        InvalidInputError: ``every < 1``.
    """

    def __init__(self, directory: str | Path, every: int = 100) -> None:
        if every < 1:
            raise InvalidInputError(f"checkpoint interval must be >= 1 edit, got {every}")
        self.directory = Path(directory)
        self.every = every
        self._fingerprint: dict[str, Any] | None = None

    def open(self, identity: dict[str, Any]) -> RunState:
        """The saved state of the run ``identity`` (:func:`fingerprint`), or a fresh one when none is saved.

        Raises:
            CheckpointMismatchError: the directory holds the state of a different run, or an unreadable one.
        """
        self._fingerprint = identity
        path = self.directory / STATE
        if not path.is_file():
            return RunState()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CheckpointMismatchError(f"checkpoint {path} cannot be read: {exc}") from exc
        if data.get("format") != FORMAT or data.get("fingerprint") != identity:
            saved = data.get("fingerprint") or {}
            differ = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
            raise CheckpointMismatchError(
                f"checkpoint {self.directory} was written by a different command (differs in: "
                f"{', '.join(differ) or 'format'}); use another --checkpoint directory or delete this one"
            )
        state = RunState(**data["state"])
        logger.info(
            "resuming from %s: %d T value(s) scored, %d edit(s) of the next done", path, state.t_index, state.done
        )
        return state

    def restore(self, state: RunState) -> None:
        """Set the RNG states saved with ``state`` (no-op for a fresh state)."""
        if state.rng is not None:
            _set_rng_state(state.rng)

    def model_dir(self, state: RunState) -> Path | None:
        """The saved edited model of the T in progress, or ``None`` (start that T from the unedited model)."""
        return None if state.model is None else self.directory / state.model

    def save(self, state: RunState, lm: LocalLanguageModel | None) -> None:
        """Write ``state`` (with the current RNG states) and, given ``lm``, its edited model; atomic."""
        from tools.edit import save_edited

        if self._fingerprint is None:
            raise RuntimeError("BenchCheckpoint.save before open")
        self.directory.mkdir(parents=True, exist_ok=True)
        old = state.model
        state.model = None
        if lm is not None:
            state.model = f"model-{state.t_index}-{state.done}"
            target = self.directory / state.model
            shutil.rmtree(target, ignore_errors=True)
            save_edited(lm, target)  # type: ignore[arg-type]  # an HFLanguageModel (load_edited's)
        state.rng = _rng_state()
        data = {"format": FORMAT, "fingerprint": self._fingerprint, "state": state.__dict__}
        tmp = self.directory / (STATE + ".tmp")
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        os.replace(tmp, self.directory / STATE)
        if old is not None and old != state.model:
            shutil.rmtree(self.directory / old, ignore_errors=True)
        logger.info("checkpoint: T #%d, %d edit(s) done, saved to %s", state.t_index, state.done, self.directory)
