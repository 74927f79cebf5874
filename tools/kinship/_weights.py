"""Streaming access to the weight tensors of HF model directories (safetensors), one tensor at a time.

A :class:`WeightSource` maps tensor names to the ``*.safetensors`` file that holds them (a single
``model.safetensors`` or the shards named by ``model.safetensors.index.json``) and reads one tensor on demand,
so analyses over several models hold one tensor per model in memory, never a whole model.

:func:`open_sources` validates before any tensor is read: every directory exists and has weights
(:class:`~tools.errors.ModelLoadError`), and every model has the same tensor names with the same shapes as the
first (:class:`~tools.errors.ModelMismatchError`, naming the first difference).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open

from tools.errors import ModelLoadError, ModelMismatchError, NonFiniteWeightError

__all__ = ["WeightSource", "layer_of", "open_sources"]

INDEX_FILE = "model.safetensors.index.json"
WEIGHTS_FILE = "model.safetensors"
_LAYER = re.compile(r"\.(\d+)\.")


def layer_of(name: str) -> str:
    """The layer a tensor belongs to: ``"layer 3"`` for ``transformer.h.3.mlp.c_fc.weight``, else ``"other"``."""
    match = _LAYER.search(name)
    return f"layer {int(match.group(1))}" if match else "other"


class WeightSource:
    """The safetensors weights of one model directory, read tensor by tensor.

    Args:
        path: an HF model directory with ``model.safetensors`` or a sharded index.

    Raises:
        ModelLoadError: the directory does not exist, has no safetensors weights, or a file cannot be read.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ModelLoadError(f"{self.path}: no such model directory")
        self._files: dict[str, Path] = {}  # tensor name -> the file holding it
        self._shapes: dict[str, tuple[int, ...]] = {}
        index = self.path / INDEX_FILE
        try:
            if index.is_file():
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                files = sorted({self.path / f for f in weight_map.values()})
            elif (self.path / WEIGHTS_FILE).is_file():
                files = [self.path / WEIGHTS_FILE]
            else:
                raise ModelLoadError(f"{self.path}: no {WEIGHTS_FILE} (or {INDEX_FILE}) in the directory")
            for file in files:
                with safe_open(str(file), framework="pt") as handle:
                    for name in handle.keys():  # noqa: SIM118  (safe_open handles are not iterable)
                        self._files[name] = file
                        self._shapes[name] = tuple(handle.get_slice(name).get_shape())
        except ModelLoadError:
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelLoadError(f"{self.path}: cannot read the weights ({exc})") from exc

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Tensor name -> shape, in the files' order."""
        return dict(self._shapes)

    def tensor(self, name: str, *, check_finite: bool = True) -> torch.Tensor:
        """One tensor as float32 on the CPU.

        Raises:
            NonFiniteWeightError: ``check_finite`` and the tensor holds NaN or inf.
            ModelLoadError: the file cannot be read.
        """
        try:
            with safe_open(str(self._files[name]), framework="pt") as handle:
                value = handle.get_tensor(name).to(torch.float32)
        except (OSError, RuntimeError) as exc:
            raise ModelLoadError(f"{self.path}: cannot read tensor {name!r} ({exc})") from exc
        if check_finite and not bool(torch.isfinite(value).all()):
            raise NonFiniteWeightError(f"{self.path}: tensor {name!r} holds NaN or inf")
        return value


def open_sources(paths: Sequence[str | Path]) -> list[WeightSource]:
    """Open every model directory and check they all share tensor names and shapes.

    Raises:
        ModelLoadError: a directory is missing or has no readable weights.
        ModelMismatchError: two models differ in their tensor names or shapes (another architecture or size).
    """
    sources = [WeightSource(p) for p in paths]
    if not sources:
        return sources
    ref = sources[0]
    for other in sources[1:]:
        missing = sorted(set(ref.shapes) ^ set(other.shapes))
        if missing:
            raise ModelMismatchError(
                f"{other.path} and {ref.path} have different tensors (e.g. {missing[0]!r}): not the same architecture"
            )
        for name, shape in ref.shapes.items():
            if other.shapes[name] != shape:
                raise ModelMismatchError(
                    f"tensor {name!r} has shape {list(other.shapes[name])} in {other.path} but {list(shape)} in "
                    f"{ref.path}: not the same architecture or size"
                )
    return sources
