"""A per-fact cache of circuits on disk, so that an interrupted benchmark resumes where it stopped.

One file per fact, ``<root>/<key>/<fact id>.pkl``, written whole (temporary name, then renamed), where ``key``
names everything a circuit depends on: the model, the finder's settings, the seed and :data:`CACHE_VERSION`
(raised whenever the discovery code changes what it computes). Files are pickles of
:class:`tools.circuits.Circuit` written by this module; the cache reads only its own directory, never input
from elsewhere.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

from tools.circuits import Circuit

__all__ = ["CACHE_VERSION", "CircuitCache"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 2


class CircuitCache:
    """Circuits by fact id under ``root / key`` (see the module docstring).

    Args:
        root: the cache directory (created on the first write).
        model: the model's name.
        finder: the :class:`tools.circuits.CircuitFinder` whose settings key the cache.
        seed: the corrupted-subject seed.
    """

    def __init__(self, root: Path, model: str, finder: Any, *, seed: int) -> None:
        ablation = "mean" if finder.mean_ablation else "corrupt"
        key = f"v{CACHE_VERSION}-{model}-steps{finder.steps}-{finder.selection}-{finder.rank}-{ablation}-seed{seed}"
        self.dir = root / re.sub(r"[^A-Za-z0-9_.-]+", "_", key)

    def _path(self, fact_id: str) -> Path:
        return self.dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', fact_id)}.pkl"

    def get(self, fact_id: str) -> Circuit | None:
        """The cached circuit of ``fact_id``, or None (also for an unreadable file, which is then recomputed)."""
        path = self._path(fact_id)
        if not path.is_file():
            return None
        try:
            with path.open("rb") as fh:
                circuit = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            logger.warning("circuit cache %s unreadable (%s): recomputed", path, exc)
            return None
        return circuit if isinstance(circuit, Circuit) else None

    def put(self, fact_id: str, circuit: Circuit) -> None:
        """Store ``circuit`` for ``fact_id`` (whole file or nothing)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(circuit, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self._path(fact_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
