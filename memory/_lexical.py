"""The lexical channel: BM25 over jieba-segmented text, a second cache of SQLite beside the FAISS index.

MiniLM is an English model: for Chinese questions its neighbours are close to random, so the memory also
answers by words (issue 23). Texts are segmented by :func:`segment` (traditional folded to simplified with
OpenCC, jieba's search-mode words for CJK runs, lower-cased words for everything else, punctuation and a few
Chinese function words dropped) and scored with BM25 (``bm25s``, Lucene's variant, k1 = 1.5, b = 0.75).

Like the vector index the BM25 index holds every version ever written (time travel needs them) keyed by row
id, and a search keeps only the rows the :class:`~memory._schema.Filter` accepts. It is rebuilt from
``mem_items`` (the source of truth) when the change log has moved since it was built: BM25's statistics
are corpus-wide, so an incremental add would change every score anyway; a rebuild of 10k short texts takes
about a second on one core, and it happens at the first lexical search after writes, never during a write.
With a directory it is saved there (``lexical.json`` sidecar with ``seq`` and ``db_id``, ``rows.npy``, the
``bm25s`` files) and loaded on the next open when it is still current; a damaged or foreign copy is rebuilt.

jieba and bm25s are the ``zh`` extra: imported at the first lexical search, a missing one is a
:class:`~tools.errors.ConfigError`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import sqlite3
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from memory._schema import Filter, fetch_rows
from tools.errors import ConfigError

__all__ = ["LexicalIndex", "segment"]

logger = logging.getLogger(__name__)

_FORMAT = 1
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")
# Function words that match almost every Chinese question or statement (BM25's idf would only shrink them).
_ZH_STOP = frozenset(
    "的 了 是 吗 呢 吧 啊 么 什么 哪 哪里 哪个 哪座 谁 在 和 与 中 里 一 这 那 个 请 叫 为 于".split()  # noqa: SIM905
)


@functools.cache
def _tools() -> tuple[Callable[[str], str], Callable[[str], Any], Any]:
    """OpenCC t2s, jieba's search-mode cutter and the bm25s module, loaded once."""
    try:
        import bm25s
        import jieba
        import opencc
    except ImportError as exc:
        raise ConfigError(f"lexical retrieval needs the zh extra (pip install 'factagent[zh]'): {exc}") from exc
    jieba.setLogLevel(logging.WARNING)
    return opencc.OpenCC("t2s").convert, jieba.cut_for_search, bm25s


def segment(text: str) -> list[str]:
    """The BM25 terms of ``text``: jieba words for Chinese, lower-case words for other scripts.

    Example:
        >>> segment("法國的首都是哪里？")
        ['法国', '首都']
    """
    t2s, cut, _ = _tools()
    text = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    position = 0
    for run in _CJK_RUN.finditer(text):
        terms += _WORD.findall(text[position : run.start()])
        terms += [w for w in cut(t2s(run.group())) if w.strip() and w not in _ZH_STOP and _WORD.fullmatch(w)]
        position = run.end()
    terms += _WORD.findall(text[position:])
    return terms


class LexicalIndex:
    """BM25 over the texts of every stored version, kept current with the change log. Callers hold the db lock.

    Args:
        directory: where the index is saved between runs; ``None`` keeps it in memory only.
        db_id: the database it mirrors (a saved index of another database is ignored).
    """

    def __init__(self, directory: Path | None, db_id: str) -> None:
        self._directory = directory
        self._db_id = db_id
        self.seq = -1  # change-log position the index reflects; -1: not built
        self._rows = np.empty(0, dtype=np.int64)  # row id of each BM25 document
        self._bm25: Any = None

    def sync(self, conn: sqlite3.Connection) -> None:
        """Load or rebuild the index if the database changed since it was built."""
        head = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM mem_log").fetchone()[0])
        if head == self.seq:
            return
        if self.seq < 0 and self._load(head):
            return
        self._build(conn, head)

    def search(
        self, conn: sqlite3.Connection, query: str, k: int, where: Filter
    ) -> list[tuple[tuple[Any, ...], float]]:
        """The ``k`` best ``(row, bm25 score)`` pairs ``where`` accepts, best first; no shared term, no hit."""
        self.sync(conn)
        terms = segment(query)
        if not terms or self._bm25 is None or not len(self._rows):
            return []
        scores = np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
        order = np.argsort(-scores, kind="stable")
        hits: list[tuple[tuple[Any, ...], float]] = []
        fetch = 4 * k + 6
        start = 0
        while len(hits) < k and start < len(order) and scores[order[start]] > 0:
            chunk = [int(i) for i in order[start : start + fetch] if scores[i] > 0]
            rows = fetch_rows(conn, (int(self._rows[i]) for i in chunk))
            for i in chunk:
                row = rows.get(int(self._rows[i]))
                if row is not None and where.accepts(row):
                    hits.append((row, float(scores[i])))
            start += fetch
            fetch *= 4
        return hits[:k]

    # -- building and files ---------------------------------------------------------------------------------

    def _build(self, conn: sqlite3.Connection, head: int) -> None:
        _, _, bm25s = _tools()
        rows, corpus = [], []
        for row_id, text in conn.execute("SELECT row_id, text FROM mem_items ORDER BY row_id"):
            rows.append(int(row_id))
            corpus.append(segment(text) or [""])  # bm25s needs a token per document; "" matches no query
        self._rows = np.asarray(rows, dtype=np.int64)
        self._bm25 = None
        if corpus:
            self._bm25 = bm25s.BM25()
            self._bm25.index(corpus, show_progress=False)
        self.seq = head
        logger.info("lexical index rebuilt from the database: %d texts (log seq %d)", len(rows), head)
        self._save()

    def _save(self) -> None:
        if self._directory is None or self._bm25 is None:
            return
        target = self._directory / "lexical"
        tmp = self._directory / f".lexical-{os.getpid()}"
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            self._bm25.save(str(tmp), show_progress=False)
            np.save(tmp / "rows.npy", self._rows)
            sidecar = {"format": _FORMAT, "seq": self.seq, "db_id": self._db_id, "count": len(self._rows)}
            (tmp / "lexical.json").write_text(json.dumps(sidecar), encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        except OSError as exc:  # a cache: the next open rebuilds it
            logger.warning("could not save the lexical index in %s: %s", target, exc)
            shutil.rmtree(tmp, ignore_errors=True)

    def _load(self, head: int) -> bool:
        """Load the saved index if it mirrors this database at ``head``; False (rebuild) otherwise."""
        if self._directory is None:
            return False
        target = self._directory / "lexical"
        if not (target / "lexical.json").is_file():
            return False
        try:
            sidecar = json.loads((target / "lexical.json").read_text(encoding="utf-8"))
            if sidecar != {"format": _FORMAT, "seq": head, "db_id": self._db_id, "count": sidecar.get("count")}:
                return False
            rows = np.load(target / "rows.npy", allow_pickle=False)
            if rows.dtype != np.int64 or rows.ndim != 1 or len(rows) != sidecar["count"]:
                return False
            _, _, bm25s = _tools()
            bm25 = bm25s.BM25.load(str(target), show_progress=False)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.warning("the saved lexical index in %s is unusable (%s): rebuilding it", target, exc)
            return False
        self._rows, self._bm25, self.seq = rows, bm25, head
        return True
