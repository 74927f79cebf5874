"""Embedder benchmark (issue 30): MiniLM through torch vs ONNX Runtime, and what it does for memory ingest.

Three tables from one run, every figure measured side by side on the same texts:

1. **throughput**: texts per second of each backend (``auto`` = torch, today's default; ``torch-bf16`` = torch
   with bfloat16 Linear layers; ``onnx`` = float32; ``onnx-int8``) over the same fact sentences in batches of
   ``--batch-size``, the best of ``--repeats`` interleaved passes (so a busy neighbour on the machine hurts
   every backend alike), in wall time and per CPU second of this process (the steadier figure when other
   processes share the cores);
2. **fidelity**: for each other backend, recall@10 of exact search over its own vectors against the torch
   vectors' top 10 (the neighbours a user would get today), and the mean / minimum cosine to the torch vector;
3. **ingest**: ``VectorMemory`` on the fastest backend that keeps recall@10 >= ``QUALITY_RECALL`` (the fastest
   of all if none does) vs LangChain-FAISS on the torch embedder (the peer
   as ``bench/memory_bench.py`` sets it up), both embedding the same ``--items`` texts.

Example:
    PYTHONPATH=. .venv/bin/python bench/embedder_bench.py --items 5000 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._data import fact_sentences, query_texts
from bench._peers import make_system

if TYPE_CHECKING:
    import numpy as np

    from memory import SentenceTransformerEmbedder
    from memory.embedder import EmbedderBackend

logger = logging.getLogger("bench.embedder")
BACKENDS: tuple[EmbedderBackend, ...] = ("auto", "torch-bf16", "onnx", "onnx-int8")
QUALITY_RECALL = 0.99  # issue 30: a faster embedder must keep torch's neighbours at least this well


def throughput(
    embedders: dict[str, SentenceTransformerEmbedder], texts: list[str], batch: int, repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Texts per wall second and per CPU second of each backend, each the best of ``repeats`` interleaved passes."""
    best = {name: float("inf") for name in embedders}
    best_cpu = dict(best)
    for _ in range(repeats):
        for name, emb in embedders.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for start in range(0, len(texts), batch):
                emb.embed(texts[start : start + batch])
            best[name] = min(best[name], time.perf_counter() - t0)
            best_cpu[name] = min(best_cpu[name], time.process_time() - c0)
    wall = {name: len(texts) / seconds for name, seconds in best.items()}
    return wall, {name: len(texts) / seconds for name, seconds in best_cpu.items()}


def fidelity(
    reference: np.ndarray, ref_queries: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int
) -> dict[str, float]:
    """Recall@k of exact search over ``vectors`` against the reference's top k, and cosines to the reference."""
    import numpy as np

    want = np.argsort(-(ref_queries @ reference.T), axis=1)[:, :k]
    got = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    recall = float(np.mean([len(set(w) & set(g)) / k for w, g in zip(want, got, strict=True)]))
    cosines = (vectors * reference).sum(axis=1)
    return {"recall_at_10": recall, "cosine_mean": float(cosines.mean()), "cosine_min": float(cosines.min())}


def ingest_rate(name: str, embedder: SentenceTransformerEmbedder, texts: list[str], batch: int, workdir: Path) -> float:
    """Texts per second that system ``name`` ingests (embedding included)."""
    system = make_system(name, embedder, workdir / name)
    try:
        t0 = time.perf_counter()
        for start in range(0, len(texts), batch):
            system.ingest(texts[start : start + batch])
        system.finish()
        return len(texts) / (time.perf_counter() - t0)
    finally:
        system.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedder_bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000, help="fact sentences embedded and ingested")
    parser.add_argument("--queries", type=int, default=200, help="questions for the recall check")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per embed call (throughput)")
    parser.add_argument("--ingest-batch", type=int, default=1024, help="texts per ingest call")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved passes; the best counts")
    parser.add_argument(
        "--threads", type=int, default=0, help="intra-op threads of torch and ONNX Runtime (0: their defaults)"
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated backends to compare with auto (torch)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables (or ``--json``); returns the exit status."""
    from memory import SentenceTransformerEmbedder

    args = build_parser().parse_args(argv)
    backends: tuple[EmbedderBackend, ...] = ("auto", *(b for b in BACKENDS[1:] if b in args.backends.split(",")))
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="embedder-bench-"))
    try:
        embedders: dict[str, SentenceTransformerEmbedder] = {
            b: SentenceTransformerEmbedder(backend=b, cache_dir=workdir / "onnx", threads=args.threads or None)
            for b in backends
        }
        texts, queries = fact_sentences(args.items, seed=0), query_texts(args.queries, seed=0)
        speed, cpu_speed = throughput(embedders, texts, args.batch_size, args.repeats)
        ref, ref_q = embedders["auto"].embed(texts), embedders["auto"].embed(queries)
        quality: dict[str, dict[str, float]] = {
            b: fidelity(ref, ref_q, embedders[b].embed(texts), embedders[b].embed(queries), 10) for b in backends[1:]
        }
        good = [b for b in backends[1:] if quality[b]["recall_at_10"] >= QUALITY_RECALL] or list(backends[1:])
        fastest = max(good, key=lambda b: speed[b])
        batch = args.ingest_batch
        ingest = {
            f"factagent ({fastest})": ingest_rate("factagent", embedders[fastest], texts, batch, workdir),
            "langchain-faiss (auto)": ingest_rate("langchain-faiss", embedders["auto"], texts, batch, workdir),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "items": args.items,
        "threads": args.threads or None,
        "throughput_per_s": speed,
        "throughput_per_cpu_s": cpu_speed,
        "speedup_vs_torch": {b: speed[b] / speed["auto"] for b in backends[1:]},
        "cpu_speedup_vs_torch": {b: cpu_speed[b] / cpu_speed["auto"] for b in backends[1:]},
        "fidelity": quality,
        "ingest_per_s": ingest,
        "ingest_ratio": ingest[f"factagent ({fastest})"] / ingest["langchain-faiss (auto)"],
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n" if args.json else format_tables(result, quality) + "\n")
    return 0


def format_tables(result: dict[str, Any], quality: Mapping[str, dict[str, float]]) -> str:
    """The three tables as markdown."""
    speed, cpu = result["throughput_per_s"], result["throughput_per_cpu_s"]
    lines = [
        "| backend | texts/s | vs torch | texts/CPU-s | vs torch | recall@10 vs torch | cosine mean / min |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in speed:
        q = quality.get(b)
        fid = f"{q['recall_at_10']:.3f} | {q['cosine_mean']:.6f} / {q['cosine_min']:.6f}" if q else "1 | 1 / 1"
        rates = f"{speed[b]:.0f} | {speed[b] / speed['auto']:.2f}x | {cpu[b]:.0f} | {cpu[b] / cpu['auto']:.2f}x"
        lines.append(f"| {b} | {rates} | {fid} |")
    lines += ["", "| system (embedder) | ingest texts/s |", "|---|---|"]
    lines += [f"| {name} | {rate:.0f} |" for name, rate in result["ingest_per_s"].items()]
    lines += ["", f"factagent / langchain-faiss ingest: {result['ingest_ratio']:.2f}x"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
