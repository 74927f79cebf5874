"""IndexConfig: which FAISS structure the vector memory uses at which size, and its parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tools.errors import ConfigError

__all__ = ["IndexConfig"]


@dataclass(frozen=True)
class IndexConfig:
    """How the vector index is built and searched.

    The defaults keep recall@10 >= 0.95 against exact search up to a million MiniLM vectors while a
    CPU query stays around a millisecond at 100k vectors. Measured (bench/memory_bench.py, 2 cores): HNSW
    built batch by batch reaches recall@10 0.985 at 100k but only 0.89 at 1M, where IVF (nlist 4000,
    nprobe 64) gives 0.98 at ~3 ms a query; hence IVF from ``ivf_min`` = 200k.
    """

    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"  # auto: flat -> hnsw -> ivf by size
    flat_max: int = 50_000  # auto: exact search below this many vectors (on a GPU exact is used up to ivf_min)
    ivf_min: int | None = 200_000  # auto: IVF from this many vectors; None: HNSW however large
    hnsw_m: int = 32  # HNSW neighbours per node: memory ~ 2*M*4 bytes per vector, recall rises with M
    ef_construction: int = 80  # HNSW build beam: build time vs graph quality
    ef_search: int = 128  # HNSW query beam: recall@10 0.985 at 100k; raises query time linearly
    nlist: int | None = None  # IVF lists; None: 4*sqrt(n) (at most n/39) at each (re)training
    nprobe: int | None = None  # IVF lists scanned per query; None: max(64, nlist // 32) (recall@10 ~0.98)
    ivf_train_min: int = 25_000  # ivf: vectors wait in a flat index until this many exist, then it is trained
    save_every: int = 10_000  # persist the index file after this many changes (or half its size, if more)
    use_gpu: bool | None = None  # None: use a GPU when faiss sees one (flat and IVF; HNSW stays on CPU)

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "flat", "hnsw", "ivf"):
            raise ConfigError(f"index kind must be auto, flat, hnsw or ivf, got {self.kind!r}")
        positive = {
            "flat_max": self.flat_max,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "ivf_train_min": self.ivf_train_min,
            "save_every": self.save_every,
            "ivf_min": 1 if self.ivf_min is None else self.ivf_min,
            "nlist": 1 if self.nlist is None else self.nlist,
            "nprobe": 1 if self.nprobe is None else self.nprobe,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"IndexConfig.{name} must be a positive integer, got {value!r}")
