"""Working-memory benchmark (issue 3): ingest throughput, query latency and recall against peers.

For each size in ``--items`` every system ingests the same fact sentences in batches and then answers the same
questions one at a time, ``search(question, k=10)`` end to end (query embedding included). All systems share
one embedder instance (all-MiniLM-L6-v2, CPU here). Rows:

- ``raw-embedder``: the embedder alone on the same texts and batches (ingest) and on one question (query): the
  ceiling for ingest and the floor for query latency;
- ``factagent``: ``memory.VectorMemory`` in a temp dir (``add_many`` per batch, ``search``);
- ``langchain-faiss`` and ``mem0``: the peers (``bench/_peers.py`` says how they are set up).

``recall_at_10`` compares each system's top 10 with exact inner-product search over the same vectors. Sizes
above ``--precompute-above`` (default 100k) use precomputed vectors: the first ``--base-size`` sentences are
embedded for real and the rest derived from them (``bench/_data.py: derived_vectors``); systems then ingest
``(text, vector)`` pairs (rows say ``"vectors": "precomputed"``) and mem0, whose ``add`` always embeds, is
skipped. A peer is also skipped above its ``--peer-max-items`` (mem0 ingests ~40 items/s here).

Example:
    PYTHONPATH=. .venv/bin/python bench/memory_bench.py --items 10000,100000 --json
    # one JSON object per line on stdout: system, items, ingest_per_s, query_p50_ms, query_p99_ms,
    # recall_at_10 (+ vectors, ingest_s, finish_s, first_query_ms, ratios, skipped, note); table on stderr
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run as a script: make bench, memory and eval importable from the checkout
    sys.path.insert(0, str(_REPO))

from bench._data import (  # noqa: E402
    DERIVED_MIX_MAX,
    DERIVED_NOISE,
    derived_vectors,
    exact_top_k,
    fact_sentences,
    query_texts,
    recall_at_k,
)
from bench._peers import SYSTEMS, accepts_vectors, make_system  # noqa: E402

if TYPE_CHECKING:
    from memory import Embedder

logger = logging.getLogger("bench.memory_bench")

REQUIRED_KEYS = ("system", "items", "ingest_per_s", "query_p50_ms", "query_p99_ms", "recall_at_10")
RAW = "raw-embedder"
DEFAULT_PEER_MAX = {"langchain-faiss": 1_000_000, "mem0": 10_000}
TARGET_P50_MS = 15.0  # at 100k items, embedding included
TARGET_INGEST_VS_RAW = 0.8


@dataclass(frozen=True)
class Row:
    """One line of the result table (the first six fields are the issue's required JSON keys)."""

    system: str
    items: int
    ingest_per_s: float | None
    query_p50_ms: float | None
    query_p99_ms: float | None
    recall_at_10: float | None
    vectors: Literal["embedded", "precomputed"] = "embedded"
    index: str = ""  # the system's index structure after ingest (flat, hnsw, ...)
    ingest_s: float | None = None  # wall time of all ingest batches
    finish_s: float | None = None  # one-off work after the last batch (factagent: index file flush), not in ingest
    first_query_ms: float | None = None  # the first search after ingest, not in p50/p99
    ingest_vs_raw: float | None = None  # factagent rows with embedded vectors: ingest_per_s / raw embedder's
    factagent_ingest_ratio: float | None = None  # peer rows: factagent ingest_per_s / this peer's (>1: ahead)
    factagent_p50_ratio: float | None = None  # peer rows: factagent p50 / this peer's (<1: ahead)
    load_1m: float | None = None  # 1-min load average after the run; the bench's own 2 torch threads give ~2
    skipped: bool = False
    note: str = ""

    def to_json(self) -> str:
        """One JSON object; optional keys left out when unset, required ones always present."""
        data = dataclasses.asdict(self)
        keep = {k: v for k, v in data.items() if k in REQUIRED_KEYS or v not in (None, "", False)}
        return json.dumps({k: _rounded(v) for k, v in keep.items()}, ensure_ascii=False)


def _rounded(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


@dataclass(frozen=True)
class Corpus:
    """Texts and their real embeddings (with per-batch embedding times for the raw-embedder row)."""

    texts: list[str]
    vectors: np.ndarray  # (len(texts), d) float32: only the embedded prefix; see embedded
    batch_seconds: list[float]
    batch_size: int
    load_1m: float  # load average right after embedding

    @property
    def embedded(self) -> int:
        return len(self.vectors)

    def raw_throughput(self, n: int) -> float:
        """Embedder sentences/s over the batches that cover the first ``n`` texts."""
        batches = min(-(-n // self.batch_size), len(self.batch_seconds))
        return min(batches * self.batch_size, self.embedded) / sum(self.batch_seconds[:batches])


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="item", file=sys.stderr, disable=not enabled, leave=False)


def embed_corpus(embedder: Embedder, texts: list[str], embed_n: int, batch_size: int, progress: bool) -> Corpus:
    """Embed the first ``embed_n`` texts batch by batch, timing each batch."""
    parts: list[np.ndarray] = []
    seconds: list[float] = []
    with _progress(embed_n, f"{RAW} {embed_n}", progress) as bar:
        for start in range(0, embed_n, batch_size):
            batch = texts[start : min(start + batch_size, embed_n)]
            t0 = time.perf_counter()
            parts.append(embedder.embed(batch))
            seconds.append(time.perf_counter() - t0)
            bar.update(len(batch))
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)
    return Corpus(texts, vectors, seconds, batch_size, os.getloadavg()[0])


def _timed_searches(
    search: Callable[[str], list[str]], queries: Sequence[str], warmup: int
) -> tuple[float, list[float], list[list[str]]]:
    """(first call ms, per-query ms after ``warmup`` untimed calls, each query's hits)."""
    t0 = time.perf_counter()
    search(queries[0])
    first = (time.perf_counter() - t0) * 1000
    for q in queries[:warmup]:
        search(q)
    times, hits = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits.append(search(q))
        times.append((time.perf_counter() - t0) * 1000)
    return first, times, hits


def run_system(
    name: str,
    embedder: Embedder,
    texts: list[str],
    vectors: np.ndarray | None,
    queries: list[str],
    truth: np.ndarray,
    args: argparse.Namespace,
) -> Row:
    """Ingest ``texts`` (with ``vectors`` if precomputed) into a fresh ``name`` and measure it."""
    n = len(texts)
    kind: Literal["embedded", "precomputed"] = "embedded" if vectors is None else "precomputed"
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-{n}-", dir=args.workdir))
    try:
        system = make_system(name, embedder, workdir)
        try:
            t0 = time.perf_counter()
            with _progress(n, f"{name} {n}", args.progress) as bar:
                for start in range(0, n, args.batch_size):
                    stop = min(start + args.batch_size, n)
                    system.ingest(texts[start:stop], None if vectors is None else vectors[start:stop])
                    bar.update(stop - start)
            ingest_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            system.finish()
            finish_s = time.perf_counter() - t0
            first, times, hits = _timed_searches(lambda q: system.search(q, args.k), queries, args.warmup)
            index_kind = system.index_kind()
        finally:
            system.close()
            gc.collect()  # drop the closed store before the next system is timed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    position = {text: i for i, text in enumerate(texts)}
    found = [[position.get(text, -1) for text in found_texts] for found_texts in hits]
    row = Row(
        system=name,
        items=n,
        ingest_per_s=n / ingest_s,
        query_p50_ms=float(np.percentile(times, 50)),
        query_p99_ms=float(np.percentile(times, 99)),
        recall_at_10=recall_at_k(found, truth, args.k),
        vectors=kind,
        index=index_kind,
        ingest_s=ingest_s,
        finish_s=finish_s,
        first_query_ms=first,
        load_1m=os.getloadavg()[0],
    )
    logger.info("%s", row.to_json())
    return row


def _skip_reason(name: str, n: int, precomputed: bool, args: argparse.Namespace) -> str | None:
    if precomputed and not accepts_vectors(name):
        return f"skipped: {name}'s add() always embeds (no vectors argument), and this size uses precomputed vectors"
    limit = args.peer_max_items.get(name)
    if limit is not None and n > limit:
        why = " (mem0 ingests ~40 items/s here, slower as it grows)" if name == "mem0" else ""
        return f"skipped: {n} > --peer-max-items {name}={limit}{why}; raise it to run"
    return None


def _with_ratios(rows: list[Row]) -> list[Row]:
    by_name = {r.system: r for r in rows if not r.skipped}
    fa, raw = by_name.get("factagent"), by_name.get(RAW)
    out = []
    for row in rows:
        if row.skipped or fa is None or fa.ingest_per_s is None or fa.query_p50_ms is None:
            out.append(row)
        elif row.system == "factagent" and raw is not None and raw.ingest_per_s and row.vectors == "embedded":
            out.append(dataclasses.replace(row, ingest_vs_raw=fa.ingest_per_s / raw.ingest_per_s))
        elif row.system not in ("factagent", RAW) and row.ingest_per_s and row.query_p50_ms:
            out.append(
                dataclasses.replace(
                    row,
                    factagent_ingest_ratio=fa.ingest_per_s / row.ingest_per_s,
                    factagent_p50_ratio=fa.query_p50_ms / row.query_p50_ms,
                )
            )
        else:
            out.append(row)
    return out


def run_size(
    n: int,
    corpus: Corpus,
    embedder: Embedder,
    queries: list[str],
    query_vectors: np.ndarray,
    raw_query_ms: list[float],
    args: argparse.Namespace,
) -> list[Row]:
    """All rows for one size: raw embedder, then each selected system."""
    texts = corpus.texts[:n]
    precomputed = n > args.precompute_above
    if precomputed:
        base = min(args.base_size, n)
        logger.info("%d items: deriving vectors from %d real embeddings", n, base)
        vectors = derived_vectors(corpus.vectors[:base], n, seed=args.seed)
        method = (
            f"precomputed vectors: {base} real MiniLM embeddings + {n - base} derived as "
            f"normalise(v_a + w*v_b + noise), w~U(0,{DERIVED_MIX_MAX:g}), noise norm {DERIVED_NOISE:g} "
            "(bench/_data.py derived_vectors)"
        )
    else:
        vectors, method = corpus.vectors[:n], ""
    truth = exact_top_k(vectors, query_vectors, args.k)
    raw_n = min(n, corpus.embedded)
    rows = [
        Row(
            system=RAW,
            items=n,
            ingest_per_s=corpus.raw_throughput(raw_n),
            query_p50_ms=float(np.percentile(raw_query_ms, 50)),
            query_p99_ms=float(np.percentile(raw_query_ms, 99)),
            recall_at_10=None,
            load_1m=corpus.load_1m,
            note=f"embedder alone, on the first {raw_n} (real) sentences" if precomputed else "embedder alone",
        )
    ]
    for name in args.systems:
        reason = _skip_reason(name, n, precomputed, args)
        if reason is not None:
            logger.warning("%s at %d: %s", name, n, reason)
            rows.append(_skipped(name, n, precomputed, reason))
            continue
        try:
            row = run_system(name, embedder, texts, vectors if precomputed else None, queries, truth, args)
        except ImportError as exc:
            if name == "factagent":
                raise
            note = f"skipped: {name} not installed (no module {exc.name}); pip install -e '.[bench]'"
            logger.warning("%s", note)
            row = _skipped(name, n, precomputed, note)
        rows.append(dataclasses.replace(row, note=method) if method and not row.skipped else row)
    return _with_ratios(rows)


def _skipped(name: str, n: int, precomputed: bool, reason: str) -> Row:
    kind: Literal["embedded", "precomputed"] = "precomputed" if precomputed else "embedded"
    return Row(name, n, None, None, None, None, vectors=kind, skipped=True, note=reason)


def format_table(rows: Sequence[Row]) -> str:
    """The human-readable table plus the issue's targets, met or missed."""
    head: tuple[str, ...] = ("system", "items", "vectors", "index", "ingest/s", "p50 ms", "p99 ms", "recall@10", "load")
    head += ("fa/peer ingest", "fa/peer p50")  # factagent / peer: ingest > 1 and p50 < 1 mean factagent ahead
    lines = []
    for r in rows:
        ratio_i = f"{r.factagent_ingest_ratio:.2f}x" if r.factagent_ingest_ratio else ""
        ratio_q = f"{r.factagent_p50_ratio:.2f}x" if r.factagent_p50_ratio else ""
        if r.ingest_vs_raw:
            ratio_i = f"{r.ingest_vs_raw:.0%} of raw"
        lines.append(
            (
                r.system,
                str(r.items),
                r.vectors,
                r.index,
                _fmt(r.ingest_per_s, ".0f"),
                _fmt(r.query_p50_ms, ".2f"),
                _fmt(r.query_p99_ms, ".2f"),
                _fmt(r.recall_at_10, ".3f"),
                _fmt(r.load_1m, ".1f"),
                ratio_i,
                ratio_q if not r.skipped else r.note,
            )
        )
    # The last column (p50 ratio or a skip reason) is left unpadded.
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head[:-1])] + [0]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    notes = sorted({r.note for r in rows if r.note and not r.skipped and r.system != RAW})
    out += [f"note: {n}" for n in notes]
    out += _targets(rows)
    return "\n".join(out) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _targets(rows: Sequence[Row]) -> list[str]:
    out = []
    for fa in (r for r in rows if r.system == "factagent" and not r.skipped):
        if fa.items == 100_000 and fa.query_p50_ms is not None:
            ok = "met" if fa.query_p50_ms <= TARGET_P50_MS else "MISSED"
            out.append(f"target p50 <= {TARGET_P50_MS:g} ms at 100000: {fa.query_p50_ms:.2f} ms ({ok})")
        if fa.ingest_vs_raw is not None and fa.vectors == "embedded":
            ok = "met" if fa.ingest_vs_raw >= TARGET_INGEST_VS_RAW else "MISSED"
            target = f"target ingest >= {TARGET_INGEST_VS_RAW:.0%} of raw at {fa.items}"
            out.append(f"{target}: {fa.ingest_vs_raw:.0%} ({ok})")
        for peer in (r for r in rows if r.items == fa.items and r.factagent_ingest_ratio is not None):
            if peer.factagent_ingest_ratio is None or peer.factagent_p50_ratio is None:
                continue
            ahead = peer.factagent_ingest_ratio > 1 and peer.factagent_p50_ratio < 1
            out.append(
                f"vs {peer.system} at {fa.items}: ingest {peer.factagent_ingest_ratio:.2f}x, "
                f"p50 {peer.factagent_p50_ratio:.2f}x ({'ahead' if ahead else 'NOT ahead'})"
            )
    return out


def _size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        value = int(float(text.rstrip("km")) * scale)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 10000, 100k, 1M)") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def _sizes(text: str) -> list[int]:
    return sorted({_size(part) for part in text.split(",") if part.strip()})


def _systems(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    return [s for s in SYSTEMS if s in names]


def _peer_max(text: str) -> dict[str, int]:
    """``N`` (every peer) or ``name=N,...`` (those peers; others keep their default)."""
    if "=" not in text:
        return {name: _size(text) for name in DEFAULT_PEER_MAX}
    out = dict(DEFAULT_PEER_MAX)
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in DEFAULT_PEER_MAX:
            raise argparse.ArgumentTypeError(f"unknown peer {name.strip()!r}; peers: {', '.join(DEFAULT_PEER_MAX)}")
        out[name.strip()] = _size(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memory_bench.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--items", type=_sizes, default=[10_000, 100_000], help="sizes, e.g. 10000,100k,1M")
    parser.add_argument("--json", action="store_true", help="stdout: one JSON row per line (table goes to stderr)")
    parser.add_argument("--systems", type=_systems, default=list(SYSTEMS), help=f"subset of {','.join(SYSTEMS)}")
    parser.add_argument(
        "--peer-max-items",
        type=_peer_max,
        default=dict(DEFAULT_PEER_MAX),
        help="skip a peer above this size: N for all peers or name=N,... (default "
        + ",".join(f"{k}={v}" for k, v in DEFAULT_PEER_MAX.items())
        + ")",
    )
    parser.add_argument("--queries", type=int, default=200, help="questions timed per system (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed searches before timing (default 5)")
    parser.add_argument("--k", type=int, default=10, help="hits per search and recall depth (default 10)")
    parser.add_argument("--batch-size", type=int, default=1024, help="texts per ingest batch, all systems")
    parser.add_argument("--precompute-above", type=_size, default=100_000, help="larger sizes use derived vectors")
    parser.add_argument("--base-size", type=_size, default=20_000, help="real embeddings behind derived vectors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where temp stores go (default: system temp)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, peers' own logs included")
    return parser


def main(argv: Sequence[str] | None = None, *, embedder: Embedder | None = None, out: TextIO | None = None) -> int:
    """Run the benchmark; returns the exit status.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).
        embedder: the shared embedder (default: ``memory.SentenceTransformerEmbedder()``); tests pass a fake.
        out: where rows/table go (default stdout).
    """
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("bench").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    for noisy in ("mem0", "faiss", "sentence_transformers", "httpx", "posthog"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.ERROR)
    if args.queries < 1 or args.k < 1 or args.batch_size < 1 or args.warmup < 0:
        build_parser().error("--queries, --k and --batch-size must be >= 1, --warmup >= 0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ["MEM0_TELEMETRY"] = "False"
    run_dir = Path(tempfile.mkdtemp(prefix="memory-bench-", dir=args.workdir))
    os.environ.setdefault("MEM0_DIR", str(run_dir / "mem0-home"))
    args.workdir = run_dir
    try:
        return _run(args, embedder, out)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _run(args: argparse.Namespace, embedder: Embedder | None, out: TextIO) -> int:
    if embedder is None:
        from memory import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder()
    largest = max(args.items)
    # Embed once, as far as the largest real-vector size (or the base of derived vectors) needs.
    embed_n = max((n for n in args.items if n <= args.precompute_above), default=0)
    if largest > args.precompute_above:
        embed_n = max(embed_n, min(args.base_size, largest))
    load = os.getloadavg()[0]
    if load > 0.5:
        logger.warning("load average %.2f before start: other processes share the CPU, timings will be noisy", load)
    logger.info("generating %d sentences and %d questions", largest, args.queries)
    texts = fact_sentences(largest, seed=args.seed)
    queries = query_texts(args.queries, seed=args.seed)
    query_vectors = embedder.embed(queries)
    raw_query_ms = _timed_searches(lambda q: [str(embedder.embed([q]).shape)], queries, args.warmup)[1]
    logger.info("embedding %d sentences (raw-embedder row and exact neighbours)", embed_n)
    corpus = embed_corpus(embedder, texts, embed_n, args.batch_size, args.progress)
    rows: list[Row] = []
    for n in args.items:
        size_rows = run_size(n, corpus, embedder, queries, query_vectors, raw_query_ms, args)
        rows += size_rows
        if args.json:
            out.write("".join(row.to_json() + "\n" for row in size_rows))
            out.flush()
    table = format_table(rows)
    (sys.stderr if args.json else out).write(table)
    return 0


if __name__ == "__main__":
    # SIGTERM as SystemExit, so the finally blocks remove the temp stores of an interrupted run.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
