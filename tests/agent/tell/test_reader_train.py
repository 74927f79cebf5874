"""Training the reader's heads: per-epoch checkpoints, resuming, progress (synthetic states, no encoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.tell._reader_data import Example
from agent.tell._reader_model import ARRAYS, Encoded
from agent.tell._reader_train import Progress, _train_heads
from tools.errors import ConfigError

RELATIONS = ("a", "b")


def _data(n: int = 12, width: int = 6) -> tuple[list[Encoded], list[Example]]:
    """Sentences "xx yy zz" as five tokens ([CLS], three words, [SEP]) with random states."""
    rng = np.random.default_rng(0)
    offsets = np.array([[0, 0], [0, 2], [3, 5], [6, 8], [0, 0]])
    encoded, examples = [], []
    for i in range(n):
        states = rng.standard_normal((5, width)).astype(np.float32)
        encoded.append(Encoded("xx yy zz", states, offsets, np.zeros(5, np.float32)))
        examples.append(Example("xx yy zz", RELATIONS[i % 2], (0, 2), (6, 8)))
    return encoded, examples


def _train(
    epochs: int, checkpoint: Path | None = None, seed: int = 0, progress: Progress | None = None
) -> dict[str, np.ndarray]:
    encoded, examples = _data()
    return _train_heads(
        encoded, examples, RELATIONS, seed, epochs, proj=4, lstm=3, hidden=5, batch=4, checkpoint=checkpoint,
        progress=progress,
    )  # fmt: skip


def test_a_resumed_run_gives_what_an_uninterrupted_one_gives(tmp_path: Path) -> None:
    whole = _train(epochs=3)
    _train(epochs=1, checkpoint=tmp_path)  # "interrupted" after its first epoch
    assert (tmp_path / "heads.pt").exists() and not (tmp_path / "heads.pt.tmp").exists()
    stages: set[str] = set()
    resumed = _train(epochs=3, checkpoint=tmp_path, progress=lambda stage, done, total: stages.add(stage))
    assert stages == {"training epoch 2/3", "training epoch 3/3"}  # the first epoch came from the checkpoint
    for key in ARRAYS:
        assert np.array_equal(whole[key], resumed[key]), key
    assert not np.array_equal(whole["wr"], _train(epochs=1)["wr"])  # the resumed run did train on


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    _train(epochs=1, checkpoint=tmp_path)
    with pytest.raises(ConfigError, match="other settings"):
        _train(epochs=2, checkpoint=tmp_path, seed=1)
    (tmp_path / "heads.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read"):
        _train(epochs=2, checkpoint=tmp_path)


def test_training_reports_its_progress() -> None:
    seen: list[tuple[str, int, int]] = []
    _train(epochs=2, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert ("training epoch 2/2", 3, 3) in seen and seen[0] == ("training epoch 1/2", 1, 3)
