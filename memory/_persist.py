"""Index files on disk: the FAISS file, its JSON sidecar, atomic replacement and a cross-process lock.

Layout of ``index_dir``::

    index.json                 sidecar: format, kind, dimension, count, seq, db_id, file, sha256, state
    index-<hex>.faiss          the index the sidecar names
    index.lock                 fcntl lock: shared while loading, exclusive while saving

A save writes a new uniquely named index file, then atomically replaces the sidecar to point at it, then
deletes the old file: a process killed at any moment leaves either the old or the new pair, never a torn
one. ``seq`` is the last change-log entry the index holds; ``db_id`` names the database it was built from.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memory._config import IndexConfig
from memory._index import FaissIndex
from tools.errors import IndexCorruptError, StoreError

__all__ = ["IndexFiles", "Sidecar"]

logger = logging.getLogger(__name__)

FORMAT = 1
SIDECAR = "index.json"
LOCK = "index.lock"


@dataclass(frozen=True)
class Sidecar:
    """What the sidecar records about the index file it names."""

    format: int
    kind: str
    dimension: int
    count: int  # live vectors in the index
    seq: int  # last mem_log seq applied to the index
    db_id: str  # the database the index mirrors
    file: str  # name of the index file in the same directory
    sha256: str  # checksum of that file
    state: dict[str, Any] = field(default_factory=dict)  # FaissIndex.save() state (tombstones, ...)

    @classmethod
    def parse(cls, raw: bytes) -> Sidecar:
        """Raises: IndexCorruptError on anything but a well-formed sidecar of this format."""
        try:
            data = json.loads(raw)
            sidecar = cls(**data)
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"unreadable index sidecar: {exc}") from exc
        ints = (sidecar.format, sidecar.dimension, sidecar.count, sidecar.seq)
        strs = (sidecar.kind, sidecar.db_id, sidecar.file, sidecar.sha256)
        if (
            not all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
            or not all(isinstance(v, str) for v in strs)
            or not isinstance(sidecar.state, dict)
            or "/" in sidecar.file
            or sidecar.format != FORMAT
        ):
            raise IndexCorruptError(f"malformed index sidecar: {data!r:.200}")
        return sidecar


class IndexFiles:
    """Loads and saves one :class:`FaissIndex` under ``directory`` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create index directory {self.directory}: {exc}") from exc

    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        try:
            fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the index lock in {self.directory}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def read_sidecar(self) -> Sidecar | None:
        """The current sidecar, ``None`` if there is none.

        Raises:
            IndexCorruptError: the sidecar exists but cannot be parsed.
        """
        try:
            raw = (self.directory / SIDECAR).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {self.directory / SIDECAR}: {exc}") from exc
        return Sidecar.parse(raw)

    def load(self, dimension: int, config: IndexConfig, db_id: str) -> tuple[FaissIndex, Sidecar] | None:
        """The saved index and its sidecar, or ``None`` when nothing was saved yet.

        Raises:
            IndexCorruptError: unreadable sidecar or index file, checksum or count mismatch, or an index
                built for another database or dimension.
        """
        with self._locked(exclusive=False):
            sidecar = self.read_sidecar()
            if sidecar is None:
                return None
            if sidecar.db_id != db_id:
                raise IndexCorruptError(f"{self.directory}: the index belongs to another database")
            if sidecar.dimension != dimension:
                raise IndexCorruptError(f"{self.directory}: index dimension {sidecar.dimension}, need {dimension}")
            path = self.directory / sidecar.file
            try:
                digest = _sha256(path)
            except OSError as exc:
                raise IndexCorruptError(f"cannot read index file {path}: {exc}") from exc
            if digest != sidecar.sha256:
                raise IndexCorruptError(f"{path}: checksum mismatch (file changed or truncated)")
            index = FaissIndex.load(path, dimension, config, sidecar.state)
        if len(index) != sidecar.count:
            raise IndexCorruptError(f"{path}: holds {len(index)} vectors, the sidecar says {sidecar.count}")
        return index, sidecar

    def save(self, index: FaissIndex, seq: int, db_id: str) -> bool:
        """Atomically replace the saved index; ``False`` (nothing written) if a newer one is already there.

        Raises:
            StoreError: the files cannot be written.
        """
        with self._locked(exclusive=True):
            try:
                current = self.read_sidecar()
            except IndexCorruptError:
                current = None  # about to be replaced anyway
            if current is not None and current.db_id == db_id and current.seq > seq:
                return False  # another process saved a later state
            name = f"index-{uuid.uuid4().hex[:16]}.faiss"
            tmp = self.directory / f"{name}.tmp"
            try:
                state = index.save(tmp)
                _fsync(tmp)
                digest = _sha256(tmp)
                os.replace(tmp, self.directory / name)
                sidecar = Sidecar(FORMAT, index.kind, index.dimension, len(index), seq, db_id, name, digest, state)
                side_tmp = self.directory / f"{SIDECAR}.tmp"
                side_tmp.write_text(json.dumps(asdict(sidecar)), encoding="utf-8")
                _fsync(side_tmp)
                os.replace(side_tmp, self.directory / SIDECAR)
                _fsync(self.directory)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise StoreError(f"cannot save the index in {self.directory}: {exc}") from exc
            self._remove_stale(keep=name)
        logger.debug("saved %s index of %d vectors at seq %d to %s", index.kind, len(index), seq, name)
        return True

    def _remove_stale(self, keep: str) -> None:
        """Old index files and temporaries of interrupted saves (we hold the exclusive lock)."""
        for path in self.directory.iterdir():
            if path.name != keep and path.name.startswith("index-") and path.suffix in (".faiss", ".tmp"):
                try:
                    path.unlink()
                except OSError as exc:  # a leftover file wastes space but harms nothing
                    logger.warning("cannot remove old index file %s: %s", path, exc)


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
