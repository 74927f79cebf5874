"""MemoEmbedder: the wrapped embedder's vectors, each text embedded once, counts of the work done."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memory import EmbedderCounts, MemoEmbedder
from tests.memory.fakes import HashEmbedder
from tools.errors import EmbedderError


def test_same_vectors_and_each_text_embedded_once() -> None:
    inner = HashEmbedder()
    memo = MemoEmbedder(inner)
    first = memo.embed(["a b", "c d", "a b"])
    again = memo.embed(["c d", "a b", "e f"])
    assert np.array_equal(first, HashEmbedder().embed(["a b", "c d", "a b"]))
    assert np.array_equal(again[:2], first[[1, 0]])
    assert inner.texts == 3 and inner.calls == 2  # "a b", "c d", then "e f"
    assert memo.counts() == EmbedderCounts(calls=2, texts=3, reused=3)
    assert memo.embed([]).shape == (0, 64)


def test_bounded_and_errors_keep_nothing() -> None:
    memo = MemoEmbedder(HashEmbedder(), max_items=2)
    memo.embed(["a", "b", "c"])
    assert memo.embed(["c"]).shape == (1, 64) and memo.counts().reused == 1
    memo.embed(["a"])  # evicted: embedded again
    assert memo.counts().texts == 4

    class Broken(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            raise EmbedderError("broken")

    broken = MemoEmbedder(Broken())
    with pytest.raises(EmbedderError):
        broken.embed(["x"])
    assert broken.counts() == EmbedderCounts()


def test_threads_share_one_memo() -> None:
    memo = MemoEmbedder(HashEmbedder(), max_items=8)
    texts = [f"text {i}" for i in range(20)]
    want = HashEmbedder().embed(texts)
    bad: list[int] = []

    def work(seed: int) -> None:
        for j in range(50):
            i = (seed * 7 + j) % 20
            if not np.array_equal(memo.embed([texts[i]])[0], want[i]):
                bad.append(i)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
