"""The systems under test behind one small protocol: factagent's VectorMemory and its peers.

Every system gets the bench's one shared :class:`memory.Embedder` instance, so differences come from the
store, not the model. Peers are set up the way /work/shared/PEERS.md describes, offline:

- ``langchain-faiss``: ``langchain_community.vectorstores.FAISS`` (exact flat index) with a
  ``langchain_core`` ``Embeddings`` wrapper; texts via ``from_texts``/``add_texts``, precomputed vectors via
  ``from_embeddings``/``add_embeddings``; ``similarity_search(q, k)``.
- ``mem0``: ``mem0.Memory.from_config`` with its ``faiss`` vector store and a history DB in a temp dir, the
  ``huggingface`` embedder pointed at the local MiniLM directory (then swapped for the shared instance: same
  model, and mem0 still embeds one text per call, as its own embedder does), and an ``llm`` entry at an
  unreachable URL that ``add(..., infer=False)`` never calls. ``search`` runs with ``threshold=0.0`` so a
  query always returns ``k`` hits (recall counts ranking, not mem0's score cut-off). mem0 2.2's ``add`` has
  no way to pass vectors, so it cannot run at sizes that use precomputed vectors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np

    from memory import Embedder

logger = logging.getLogger(__name__)

SYSTEMS = ("factagent", "langchain-faiss", "mem0")


class BenchSystem(Protocol):
    """What the bench drives: batched ingest, then one query at a time."""

    name: str
    accepts_vectors: bool  # False: ingest() cannot take precomputed vectors

    def ingest(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        """Store one batch of ``texts`` (embedding them unless ``vectors``, ``(len(texts), d)``, is given)."""
        ...

    def finish(self) -> None:
        """Anything the system does once after the last batch (factagent: persist the index file)."""
        ...

    def search(self, query: str, k: int) -> list[str]:
        """The texts of the ``k`` best hits, best first (bench texts are distinct, so a text is an id)."""
        ...

    def index_kind(self) -> str:
        """The index structure in use now (``flat``, ``hnsw``, ...)."""
        ...

    def close(self) -> None:
        """Release files and memory."""
        ...


def _system_class(name: str) -> type[FactagentSystem | LangChainFaissSystem | Mem0System]:
    classes: dict[str, type[FactagentSystem | LangChainFaissSystem | Mem0System]] = {
        "factagent": FactagentSystem,
        "langchain-faiss": LangChainFaissSystem,
        "mem0": Mem0System,
    }
    if name not in classes:
        raise ValueError(f"unknown system {name!r}; expected one of {', '.join(SYSTEMS)}")
    return classes[name]


def accepts_vectors(name: str) -> bool:
    """Whether system ``name`` can ingest precomputed vectors (mem0 cannot).

    Raises:
        ValueError: unknown name.
    """
    return _system_class(name).accepts_vectors


def make_system(name: str, embedder: Embedder, workdir: Path) -> BenchSystem:
    """Build the system called ``name`` (one of :data:`SYSTEMS`) with its files under ``workdir``.

    Raises:
        ValueError: unknown name.
        ImportError: a peer's package is missing (``pip install -e '.[bench]'``).
    """
    return _system_class(name)(embedder, workdir)


class FactagentSystem:
    """``memory.VectorMemory`` in ``workdir``: ``add_many`` per batch, ``search(q, k=k)`` end to end."""

    name = "factagent"
    accepts_vectors = True

    def __init__(self, embedder: Embedder, workdir: Path) -> None:
        from memory import VectorMemory

        self._memory = VectorMemory.open(workdir / "factagent", embedder)

    def ingest(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        self._memory.add_many(list(texts), vectors=vectors)

    def finish(self) -> None:
        self._memory.flush()

    def search(self, query: str, k: int) -> list[str]:
        return [hit.item.text for hit in self._memory.search(query, k=k)]

    def index_kind(self) -> str:
        return self._memory.index_kind

    def close(self) -> None:
        self._memory.close()


def _langchain_embeddings(embedder: Embedder) -> Any:
    """A ``langchain_core`` ``Embeddings`` over the shared embedder (class built lazily: light imports)."""
    from langchain_core.embeddings import Embeddings

    class SharedEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed([text])[0].tolist()

    return SharedEmbeddings()


class LangChainFaissSystem:
    """LangChain community ``FAISS`` (in memory, ``IndexFlatL2``: same ranking as inner product on unit rows)."""

    name = "langchain-faiss"
    accepts_vectors = True

    def __init__(self, embedder: Embedder, workdir: Path) -> None:
        """``workdir`` is unused: the store lives in memory."""
        from langchain_community.vectorstores import FAISS

        self._cls = FAISS
        self._embeddings = _langchain_embeddings(embedder)
        self._store: Any = None

    def ingest(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        if vectors is None:
            if self._store is None:
                self._store = self._cls.from_texts(list(texts), self._embeddings)
            else:
                self._store.add_texts(list(texts))
            return
        # LangChain takes (text, list[float]) pairs; converting per batch keeps the Python floats transient.
        pairs = list(zip(texts, vectors.tolist(), strict=True))
        if self._store is None:
            self._store = self._cls.from_embeddings(pairs, self._embeddings)
        else:
            self._store.add_embeddings(pairs)

    def finish(self) -> None:
        """Nothing: the store lives in memory."""

    def search(self, query: str, k: int) -> list[str]:
        return [doc.page_content for doc in self._store.similarity_search(query, k=k)]

    def index_kind(self) -> str:
        return "flat"

    def close(self) -> None:
        self._store = None


class _Mem0Embedding:
    """mem0's embedder interface (``embed``/``embed_batch``) over the shared embedder."""

    def __init__(self, embedder: Embedder, config: Any) -> None:
        self._embedder = embedder
        self.config = config

    def embed(self, text: str, memory_action: Literal["add", "search", "update"] | None = None) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def embed_batch(self, texts: list[str], memory_action: str = "add") -> list[list[float]]:
        return self._embedder.embed(texts).tolist()


class Mem0System:
    """mem0 ``Memory`` (faiss store, no LLM in the write path: ``add(..., infer=False)``)."""

    name = "mem0"
    accepts_vectors = False
    user_id = "bench"

    def __init__(self, embedder: Embedder, workdir: Path) -> None:
        from memory import default_model_dir

        home = workdir / "mem0"
        home.mkdir(parents=True, exist_ok=True)
        # mem0 reads these at import time: keep its config dir out of $HOME and its telemetry off.
        os.environ.setdefault("MEM0_DIR", str(home / "dot-mem0"))
        os.environ["MEM0_TELEMETRY"] = "False"
        from mem0 import Memory

        config = {
            "vector_store": {
                "provider": "faiss",
                "config": {"collection_name": "bench", "path": str(home / "faiss"), "embedding_model_dims": 384},
            },
            "embedder": {
                "provider": "huggingface",
                "config": {"model": str(default_model_dir()), "embedding_dims": embedder.dimension},
            },
            # Required by mem0's config; with infer=False no call reaches it (the URL is unroutable).
            "llm": {
                "provider": "openai",
                "config": {"api_key": "unused", "openai_base_url": "http://127.0.0.1:9/v1", "model": "unused"},
            },
            "history_db_path": str(home / "history.db"),
        }
        self._memory = Memory.from_config(config)
        self._memory.embedding_model = _Mem0Embedding(embedder, self._memory.embedding_model.config)

    def ingest(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> None:
        if vectors is not None:
            raise ValueError("mem0's add() always embeds: it takes no precomputed vectors")
        messages = [{"role": "user", "content": text} for text in texts]
        self._memory.add(messages, user_id=self.user_id, infer=False)

    def finish(self) -> None:
        """Nothing: mem0 saves its faiss index and docstore on every insert."""

    def search(self, query: str, k: int) -> list[str]:
        found = self._memory.search(query, filters={"user_id": self.user_id}, top_k=k, threshold=0.0)
        return [hit["memory"] for hit in found["results"]]

    def index_kind(self) -> str:
        return "flat"

    def close(self) -> None:
        self._memory.close()
