"""The same mean-pooled sentence embeddings through ONNX Runtime, exported once from the shipped weights.

Why: on a 2-core CPU the embedder is a quarter of every ask and all of memory ingest (issue 30). ONNX Runtime
with int8 weights (dynamic quantisation, one scale per output channel) runs MiniLM about twice as fast as
torch; float32 ONNX gives the torch vectors to ~1e-7 and is kept as the exact choice.

The export needs torch and transformers once: the model and its pooling (mean over the attention mask, then
L2 normalisation, as :class:`memory._pooled_encoder.PooledEncoder`) are traced into one graph and written to
a cache folder keyed by a digest of the source model, so a second process only loads the ``.onnx`` file and
needs neither torch nor transformers to embed. Files are written to a temporary folder and renamed into
place, so a crashed or concurrent export never leaves a half-written model behind.

Texts are sorted by length before batching (fewer pad tokens) and returned in the caller's order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tools.errors import EmbedderError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxEncoder", "default_cache_dir", "export_onnx"]

logger = logging.getLogger(__name__)
Precision = Literal["fp32", "int8"]
_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_FORMAT = 1  # bump when the exported graph changes, so old caches are not reused


def default_cache_dir() -> Path:
    """``$FACTAGENT_CACHE/onnx``, else ``~/.cache/factagent/onnx``."""
    root = os.environ.get("FACTAGENT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "factagent") / "onnx"


def _digest(model_dir: Path) -> str:
    """A cheap fingerprint of a model directory: its config, its weights' size and their first MiB."""
    h = hashlib.sha256(f"format={_FORMAT}".encode())
    for name in ("config.json", "sentence_bert_config.json", "tokenizer.json"):
        path = model_dir / name
        h.update(path.read_bytes() if path.is_file() else b"-")
    weights = [p for p in sorted(model_dir.iterdir()) if p.suffix in (".safetensors", ".bin")]
    for path in weights:
        h.update(f"{path.name}:{path.stat().st_size}".encode())
        with path.open("rb") as fh:
            h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def export_onnx(model_dir: Path, cache_dir: Path, precision: Precision) -> Path:
    """The ``.onnx`` file of ``model_dir`` at ``precision``, exported into ``cache_dir`` on first use.

    Raises:
        EmbedderError: torch, transformers or onnx is missing, or the export fails.
    """
    target = cache_dir / f"{model_dir.name}-{_digest(model_dir)}"
    path = target / _FILES[precision]
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    try:
        if (target / _FILES["fp32"]).is_file():  # the fp32 export exists: only quantise it
            shutil.copy2(target / _FILES["fp32"], work / _FILES["fp32"])
        else:
            _export_fp32(model_dir, work / _FILES["fp32"])
        if precision == "int8":
            _quantize(work / _FILES["fp32"], work / _FILES["int8"])
        (work / "source.json").write_text(json.dumps({"model_dir": str(model_dir), "format": _FORMAT}), "utf-8")
        target.mkdir(exist_ok=True)
        for item in work.iterdir():
            os.replace(item, target / item.name)  # each file appears whole or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("exported %s to %s", model_dir.name, path)
    return path


def _export_fp32(model_dir: Path, out: Path) -> None:
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise EmbedderError(f"exporting the embedder to ONNX needs torch and transformers: {exc}") from exc

    class _Pooled(torch.nn.Module):
        """The encoder plus mean pooling and normalisation, as one graph."""

        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    try:
        model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        ones, zeros = torch.ones(2, 8, dtype=torch.long), torch.zeros(2, 8, dtype=torch.long)
        example = (ones, ones, zeros)  # input_ids, attention_mask, token_type_ids
        axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about shape checks in transformers' masking code; the exported graph is checked
            # against torch on padded batches of mixed lengths (tests/memory/test_onnx_encoder.py).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Pooled(model),
                example,
                str(out),
                input_names=list(_INPUTS),
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT's dynamic shapes
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise EmbedderError(f"cannot export {model_dir} to ONNX: {exc}") from exc


def _quantize(src: Path, out: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbedderError(f"int8 quantisation needs onnxruntime and onnx: {exc}") from exc
    # Per-channel scales: per-tensor int8 moved MiniLM's vectors to a mean cosine of 0.967 with the float ones,
    # per-channel to 0.993 (measured on 1,000 sentences).
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True)


class OnnxEncoder:
    """Mean-pooled, normalised sentence embeddings from an exported ONNX graph (CPU).

    Args:
        path: a Transformer -> mean Pooling model directory (see ``PooledEncoder.supports``).
        precision: ``fp32`` (the torch vectors) or ``int8`` (about twice as fast, cosine ~0.99 to fp32).
        cache_dir: where exports are kept (:func:`default_cache_dir` when ``None``).
        threads: ONNX Runtime intra-op threads (its default, one per core, when ``None``).

    Raises:
        EmbedderError: onnxruntime is missing, or the model cannot be exported or loaded.
    """

    device = "cpu"

    def __init__(
        self, path: Path, precision: Precision = "int8", cache_dir: Path | None = None, threads: int | None = None
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            hint = "pip install 'factagent[onnx]'"
            raise EmbedderError(f"the onnx embedder backend needs onnxruntime ({hint}): {exc}") from exc
        config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_seq_length = int(config.get("max_seq_length", 512))
        self.do_lower_case = bool(config.get("do_lower_case", False))
        self.precision = precision
        self.model_file = export_onnx(path, cache_dir or default_cache_dir(), precision)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise EmbedderError(f"cannot load {self.model_file}: {exc}") from exc
        self._tokenizer.enable_truncation(self.max_seq_length)
        self._tokenizer.no_padding()
        self.dimension = int(json.loads((path / "config.json").read_text(encoding="utf-8"))["hidden_size"])

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """``(N, dim)`` float32 unit vectors, in the order of ``texts``."""
        import numpy as np

        items = [t.lower() for t in texts] if self.do_lower_case else list(texts)
        encodings = self._tokenizer.encode_batch(items)
        order = sorted(range(len(items)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(items), self.dimension), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[chunk] = self._session.run(None, feeds)[0]
        return out
