"""Engines benchmark (issue 25): the embedded and distributed engines side by side, in one run.

Three tables, each optional:

1. **kg** (``--kg-quads N``): load N quads shaped like the knowledge graph's (each assertion in its own named
   graph) into the SQLite store, embedded Oxigraph (its bulk loader, then its transactional path is not
   used) and an ``oxigraph serve`` process (through :class:`kg.SPARQLEndpointStore` updates, as the product
   writes); then p50 / p90 of three SPARQL pattern queries with bound variables (subject lookup, object
   lookup, a two-hop join), ``--queries`` each, a property path and a ``COUNT`` (:data:`QUERIES`). Every
   store is warmed alike before timing: ``--warmup`` lookups per query on keys of their own, never the
   timed ones (:func:`draw_keys`); that first pass is reported too (``<query>_cold_p50_ms``, ``..._speedup``).
2. **vectors** (``--vector-sizes 100000,1000000``): FAISS (the memory's ``FaissIndex``, ``auto`` structure)
   vs Milvus (milvus-lite, ``--milvus-index`` HNSW / IVF_FLAT / FLAT): build time, query p50 and recall@10
   against exact search. Vectors are real MiniLM embeddings of ``--base`` world sentences and, beyond those,
   derived neighbours (:func:`bench._data.derived_vectors`), as in ``bench/memory_bench.py``. Every stage is
   kept in ``--workdir`` (embeddings, vectors, exact neighbours, the FAISS index, the milvus-lite file and
   its insert progress, each finished row), so a killed run started again with the same flags resumes.
3. **audit** (``--audit``): ``world:test`` (``--audit-limit`` questions, standalone and rag) with one process
   and with Ray on 2 workers; wall time and whether the records are identical (latency aside).

Example:
    PYTHONPATH=. .venv/bin/python bench/engines_bench.py --kg-quads 1000000 --vector-sizes 100000 --audit
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rdflib import Literal, URIRef

if TYPE_CHECKING:
    from memory._milvus_index import MilvusConfig

logger = logging.getLogger("bench.engines")
EX = "https://factagent.example/"
RELATIONS = [URIRef(f"{EX}rel/r{i}") for i in range(17)]


# -- kg ----------------------------------------------------------------------------------------------------


def kg_quads(n: int, *, seed: int = 0) -> Iterator[tuple[Any, Any, Any, Any]]:
    """``n`` quads over ``n // 4`` entities: 80% entity objects, 20% literals, each quad in its own graph."""
    rng = random.Random(seed)
    entities = max(n // 4, 10)
    for i in range(n):
        s = URIRef(f"{EX}entity/e{rng.randrange(entities)}")
        p = RELATIONS[rng.randrange(len(RELATIONS))]
        o: Any = URIRef(f"{EX}entity/e{rng.randrange(entities)}") if rng.random() < 0.8 else Literal(f"value {i}")
        yield (s, p, o, URIRef(f"{EX}graph/a{i}"))


# name -> (query, bound variable, share of --queries run): point lookups and a join as the agent asks them,
# a property path across graphs (multi-hop questions) and an aggregate (audits, dashboards)
QUERIES = {
    "subject": (f"SELECT ?o WHERE {{ GRAPH ?g {{ ?s <{RELATIONS[3]}> ?o }} }}", "s", 1.0),
    "object": (f"SELECT ?s WHERE {{ GRAPH ?g {{ ?s <{RELATIONS[5]}> ?o }} }}", "o", 1.0),
    "two-hop": (
        f"SELECT ?x WHERE {{ GRAPH ?g1 {{ ?s <{RELATIONS[1]}> ?m }} GRAPH ?g2 {{ ?m <{RELATIONS[2]}> ?x }} }}",
        "s",
        1.0,
    ),
    "path": (f"SELECT ?x WHERE {{ ?s <{RELATIONS[1]}>/<{RELATIONS[2]}>+ ?x }}", "s", 0.25),
    "count": (f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s <{RELATIONS[3]}> ?o }} }}", "", 0.025),
}


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def draw_keys(
    n_entities: int, queries: int, warmup: int, seed: int
) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Per query of :data:`QUERIES`: (first binding, warm-up bindings, timed bindings).

    The first and timed bindings are drawn from ``seed`` in query order (the keys the bench timed before it
    had a warm-up); the warm-up bindings from a separate seed, skipping every first or timed key, so the
    timed lookups stay fresh: warming can only help them through what all lookups share (index and filter
    blocks, the file pages of the store), never by having read their own rows. Each query gets
    ``max(3, share * queries)`` timed and ``max(1, share * warmup)`` warm-up bindings (none when ``warmup``
    is 0); unbound queries (``COUNT``) get empty bindings.
    """
    rng, warm_rng = random.Random(seed), random.Random(f"warm-up {seed}")

    def entity(source: random.Random) -> URIRef:
        return URIRef(f"{EX}entity/e{source.randrange(n_entities)}")

    drawn: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for name, (_, var, share) in QUERIES.items():
        count = max(3, int(share * queries))
        keys = [({var: entity(rng)} if var else {}) for _ in range(count + 1)]
        drawn[name] = (keys[0], keys[1:])
    timed = {key for first, rest in drawn.values() for bound in (first, *rest) for key in bound.values()}
    if len(timed) >= n_entities:
        raise ValueError(f"no entity left for warm-up keys: the timed keys take all {n_entities}")
    out = {}
    for name, (first, rest) in drawn.items():
        var, share = QUERIES[name][1], QUERIES[name][2]
        warm: list[dict[str, Any]] = []
        while len(warm) < (max(1, int(share * warmup)) if warmup else 0):
            key = entity(warm_rng)
            if var and key in timed:
                continue
            warm.append({var: key} if var else {})
        out[name] = (first, warm, rest)
    return out


def _ms_stats(times: list[float], found: list[float], prefix: str) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        f"{prefix}_p50_ms": 1000 * statistics.median(ordered),
        f"{prefix}_p90_ms": 1000 * ordered[int(0.9 * (len(ordered) - 1))],
        f"{prefix}_empty_share": 1 - len(found) / len(ordered),
        f"{prefix}_found_p50_ms": 1000 * statistics.median(found) if found else None,
    }


def _time_queries(store: Any, n_entities: int, queries: int, seed: int, warmup: int = 0) -> dict[str, Any]:
    """p50 / p90 (ms) of each of :data:`QUERIES`; a query the store did not answer within its timeout
    (a :class:`~tools.errors.StoreError` from the remote store) is reported as ``"no answer in N s"``.

    ``warmup``: first, for every query in turn, one untimed lookup (parsing, plans) and then a warm-up
    pass of ``share * warmup`` lookups on keys of their own (:func:`draw_keys`), itself timed and reported
    as the cold pass (``<query>_cold_p50_ms``, ...: what a store just opened gives); then the timed passes,
    query after query, on fresh keys (``<query>_p50_ms``, ...). With ``warmup=0`` the timed passes follow
    the untimed lookups directly, as before the warm-up existed.
    """
    from tools.errors import StoreError

    out: dict[str, Any] = {}
    cold: dict[str, Any] = {}  # reported after the timed figures
    keys = draw_keys(n_entities, queries, warmup, seed)
    answered = []
    for name, (sparql, _, _) in QUERIES.items():
        first, warm, _ = keys[name]
        t0 = time.perf_counter()
        try:
            store.query(sparql, first)  # parse once (cached), warm the engine
        except StoreError as exc:
            waited = time.perf_counter() - t0
            logger.warning("%s: %s query gave up after %.0f s: %s", type(store).__name__, name, waited, exc)
            out[f"{name}_p50_ms"] = out[f"{name}_p90_ms"] = f"no answer in {waited:.0f} s"
            continue
        answered.append(name)
        if warm:
            cold.update(_ms_stats(*_timed(store, sparql, warm), prefix=f"{name}_cold"))
    for name in answered:
        out.update(_ms_stats(*_timed(store, QUERIES[name][0], keys[name][2]), prefix=name))
    return out | cold


def _timed(store: Any, sparql: str, bindings: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Seconds per query, and those of queries that returned rows (most lookups find nothing)."""
    times, found = [], []
    for bound in bindings:
        t0 = time.perf_counter()
        rows = store.query(sparql, bound)
        times.append(time.perf_counter() - t0)
        if rows:
            found.append(times[-1])
    return times, found


KG_STORES = ("sqlite", "embedded", "server")


def bench_kg(
    n: int,
    queries: int,
    workdir: Path,
    *,
    reuse: bool = False,
    stores: Sequence[str] = KG_STORES,
    server_query_timeout_s: float = 120.0,
    batch: int = 50_000,
    warmup: int = 0,
) -> list[dict[str, Any]]:
    """Load and query the chosen ``stores`` (of :data:`KG_STORES`); one row per store.

    ``reuse``: a store already holding ``n`` quads in ``workdir`` is queried, not loaded again (so a 1M
    load can be done store by store, and the side-by-side query table taken in one later run). Server
    queries get ``server_query_timeout_s`` each; one that does not answer is reported as such.
    ``warmup``: lookups per query (scaled by its share) on other keys before the timed ones, the same for
    every store; reported as the cold pass (:func:`_time_queries`).
    """
    from kg import OxigraphTripleStore, SPARQLEndpointStore, SQLiteTripleStore
    from memory import Database
    from tests.kg.oxigraph_server import oxigraph_server

    rows: list[dict[str, Any]] = []
    n_entities = max(n // 4, 10)

    def measure(name: str, store: Any, load: Callable[[], object], queried: Any = None) -> None:
        row: dict[str, Any] = {"store": name}
        held = len(store) if reuse else 0
        if held >= n:  # loaded by an earlier run into --workdir: queries only
            row.update({"quads": held, "load_s": None, "load_quads_per_s": None})
        else:
            t0 = time.perf_counter()
            load()
            seconds = time.perf_counter() - t0
            row.update({"quads": len(store), "load_s": seconds, "load_quads_per_s": n / seconds})
        row.update(_time_queries(queried or store, n_entities, queries, seed=1, warmup=warmup))
        logger.info("%s: %s", name, row)
        rows.append(row)

    if "sqlite" in stores:
        db = Database.open(workdir / "kg.sqlite")
        sqlite_store = SQLiteTripleStore(db)

        def load_sqlite() -> None:
            for chunk in _chunks(kg_quads(n), batch):
                with db.transaction():
                    sqlite_store.add(chunk)

        measure("sqlite", sqlite_store, load_sqlite)
        db.close()

    if "embedded" in stores:
        oxigraph = OxigraphTripleStore(workdir / "oxigraph")
        measure("oxigraph (embedded)", oxigraph, lambda: oxigraph.bulk_load(kg_quads(n)))
        oxigraph.pattern_lookups = False  # the same store with every query through Oxigraph's SPARQL engine
        rows.append({"store": "oxigraph (embedded, SPARQL engine only)", "quads": rows[-1]["quads"]})
        rows[-1].update(_time_queries(oxigraph, n_entities, queries, seed=2, warmup=warmup))  # other entities
        oxigraph.close()

    if "server" in stores:
        t0 = time.perf_counter()  # a server stopped after a load replays its write-ahead log when it opens
        with oxigraph_server(workdir / "server", union_default_graph=False, startup_s=900) as server:
            logger.info("oxigraph serve answered after %.1f s", time.perf_counter() - t0)
            urls = (server.query_url, server.update_url)
            remote = SPARQLEndpointStore(*urls, timeout_s=600, maintain_default_graph=True)
            queried = SPARQLEndpointStore(*urls, timeout_s=server_query_timeout_s, maintain_default_graph=True)

            def load_remote() -> None:
                for chunk in _chunks(kg_quads(n), batch // 5):
                    remote.add(chunk)

            measure("oxigraph (server)", remote, load_remote, queried)
    base = next((r for r in rows if r["store"] == "sqlite"), None)
    for row in rows:
        for name in QUERIES:
            for kind in ("", "_cold") if warmup else ("",):
                mine, theirs = row.get(f"{name}{kind}_p50_ms"), base.get(f"{name}{kind}_p50_ms") if base else None
                both = isinstance(mine, float) and isinstance(theirs, float)
                row[f"{name}{kind}_speedup"] = theirs / mine if both and theirs is not None else None
    return rows


# -- vectors -----------------------------------------------------------------------------------------------

VECTOR_CHUNK = 50_000  # rows per add; a milvus-lite insert records its progress after each chunk
MILVUS_INDEXES = ("HNSW", "IVF_FLAT", "FLAT")


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (a killed run leaves the old file or the new one, never half of one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _stage_array(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    """``path``'s array if an earlier run saved it, else ``make()`` saved there (atomically) first."""
    if path.exists():
        logger.info("reusing %s", path)
        return np.asarray(np.load(path))
    array = make()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.save(f, array)
    tmp.replace(path)
    return array


def _query_row(name: str, index: Any, qv: np.ndarray, truth: np.ndarray, size: int) -> dict[str, Any]:
    from bench._data import recall_at_k

    index.search(qv[:1], 10)  # warm (Milvus loads the collection)
    found, times = [], []
    for q in qv:
        t0 = time.perf_counter()
        _, hit = index.search(q.reshape(1, -1), 10)
        times.append(time.perf_counter() - t0)
        found.append([int(i) for i in hit[0]])
    return {
        "system": name,
        "vectors": size,
        "kind": index.kind,
        "query_p50_ms": 1000 * statistics.median(times),
        "recall_at_10": recall_at_k(found, truth, 10),
    }


def _faiss_row(vectors: np.ndarray, qv: np.ndarray, truth: np.ndarray, folder: Path) -> dict[str, Any]:
    """FAISS (``auto``): built once and saved in ``folder`` (``faiss.index`` + ``faiss.json``), else read back."""
    from memory import FaissIndex, IndexConfig

    size, dim = vectors.shape
    config = IndexConfig(use_gpu=False)
    path, meta_path = folder / "faiss.index", folder / "faiss.json"
    meta = _read_json(meta_path)
    if meta is not None and path.exists():
        logger.info("reusing the FAISS index built in %.0f s", meta["build_s"])
        index = FaissIndex.load(path, dim, config, meta["state"])
    else:
        index = FaissIndex(dim, config)
        ids = np.arange(size, dtype=np.int64)
        t0 = time.perf_counter()
        for start in range(0, size, VECTOR_CHUNK):
            index.add(ids[start : start + VECTOR_CHUNK], vectors[start : start + VECTOR_CHUNK])
        meta = {"build_s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        meta["state"] = index.save(path)
        meta["save_s"] = time.perf_counter() - t0
        _write_json(meta_path, meta)
    row = _query_row("faiss (auto)", index, qv, truth, size)
    row.update({"build_s": meta["build_s"], "stages": {"insert_s": meta["build_s"]}})
    return row


def _milvus_row(
    vectors: np.ndarray, qv: np.ndarray, truth: np.ndarray, folder: Path, index_type: str
) -> dict[str, Any]:
    """milvus-lite with ``index_type``; the ``.db`` file stays in ``folder`` and ``milvus-<type>.json`` records
    the rows inserted and each stage's seconds, so a killed run resumes after the last finished chunk."""
    from memory._milvus_index import MilvusConfig, connect

    size = vectors.shape[0]
    config = MilvusConfig(
        uri=str(folder / f"milvus-{index_type}.db"),
        collection=f"bench_{size}",
        index_type=index_type,  # type: ignore[arg-type]  # checked against MILVUS_INDEXES by the CLI
    )
    progress_path = folder / f"milvus-{index_type}.json"
    client = connect(config)
    try:  # a killed stage still closes the client, so milvus-lite's file is whole when the run resumes
        return _milvus_stages(client, config, vectors, qv, truth, progress_path)
    finally:
        client.close()


def _milvus_stages(
    client: Any, config: MilvusConfig, vectors: np.ndarray, qv: np.ndarray, truth: np.ndarray, progress_path: Path
) -> dict[str, Any]:
    """Insert (resuming after the last finished chunk), wait for the index, query: :func:`_milvus_row`'s stages."""
    from memory._milvus_index import MilvusIndex

    size, dim = vectors.shape
    index_type = config.index_type
    progress = _read_json(progress_path)
    if progress is None or not client.has_collection(config.collection):
        index = MilvusIndex.create(client, config, dim)
        progress = {"inserted": 0, "insert_s": 0.0, "index_s": None, "indexed": None}
        _write_json(progress_path, progress)
    else:
        logger.info("resuming milvus-lite (%s) at %d of %d rows", index_type, progress["inserted"], size)
        index = MilvusIndex(client, config, dim)
    ids = np.arange(size, dtype=np.int64)
    for start in range(int(progress["inserted"]), size, VECTOR_CHUNK):
        t0 = time.perf_counter()
        index.add(ids[start : start + VECTOR_CHUNK], vectors[start : start + VECTOR_CHUNK])
        progress["insert_s"] += time.perf_counter() - t0
        progress["inserted"] = min(start + VECTOR_CHUNK, size)
        _write_json(progress_path, progress)
        logger.info("milvus-lite (%s): %d rows in, %.0f s", index_type, progress["inserted"], progress["insert_s"])
    if progress["indexed"] is None:
        t0 = time.perf_counter()
        try:  # Milvus builds its index in the background; a killed wait still counts the seconds it waited
            progress["indexed"] = index.wait_indexed(timeout_s=7200.0)
        finally:
            progress["index_s"] = (progress["index_s"] or 0.0) + time.perf_counter() - t0
            _write_json(progress_path, progress)
    row = _query_row(f"milvus-lite ({index_type})", index, qv, truth, size)
    row.update(
        {
            "build_s": progress["insert_s"] + progress["index_s"],
            "stages": {"insert_s": progress["insert_s"], "index_s": progress["index_s"]},
        }
    )
    return row


def bench_vectors(
    sizes: Sequence[int],
    base_n: int,
    queries: int,
    workdir: Path,
    *,
    milvus_index: str = "HNSW",
    systems: Sequence[str] = ("faiss", "milvus"),
    embedder: Any = None,
) -> list[dict[str, Any]]:
    """FAISS vs milvus-lite at each size; one row per (system, size).

    Every stage is kept in ``workdir`` so a killed run resumes where it stopped: the embeddings
    (``vectors-base-<n>.npy``, ``vectors-queries-<n>.npy``), and per size in ``vectors-<size>/`` the derived
    vectors, the exact top-10 (``truth.npy``), the built FAISS index, the milvus-lite file with its insert
    progress, and each finished system's row (``<system>.row.json``, reported again without re-measuring).
    """
    from bench._data import fact_sentences, query_texts

    def embed(texts: list[str]) -> np.ndarray:
        nonlocal embedder
        if embedder is None:
            from memory import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        return np.asarray(embedder.embed(texts), dtype=np.float32)

    base = _stage_array(workdir / f"vectors-base-{base_n}.npy", lambda: embed(fact_sentences(base_n)))
    qv = _stage_array(workdir / f"vectors-queries-{queries}.npy", lambda: embed(query_texts(queries)))
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rows += _size_rows(size, base, qv, workdir, milvus_index=milvus_index, systems=systems)
    return rows


def _size_rows(
    size: int, base: np.ndarray, qv: np.ndarray, workdir: Path, *, milvus_index: str, systems: Sequence[str]
) -> list[dict[str, Any]]:
    from bench._data import derived_vectors, exact_top_k

    folder = workdir / f"vectors-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    vectors = _stage_array(folder / "vectors.npy", lambda: derived_vectors(base, max(size, len(base)))[:size])
    truth = _stage_array(folder / "truth.npy", lambda: exact_top_k(vectors, qv, 10))
    rows = []
    for system in ("faiss", "milvus"):
        if system not in systems:
            continue
        key = "faiss" if system == "faiss" else f"milvus-{milvus_index}"
        row_path = folder / f"{key}.row.json"
        row = _read_json(row_path)
        if row is None:
            if system == "faiss":
                row = _faiss_row(vectors, qv, truth, folder)
            else:
                row = _milvus_row(vectors, qv, truth, folder, milvus_index)
            _write_json(row_path, row)
        else:
            logger.info("reusing the measured row %s", row_path)
        logger.info("%s", row)
        rows.append(row)
    return rows


# -- audit -------------------------------------------------------------------------------------------------


def bench_audit(limit: int | None, workdir: Path) -> list[dict[str, Any]]:
    """world:test with one process and with Ray on 2 workers (same home, same config)."""
    from eval.audit import AuditConfig, run_audit

    config = AuditConfig(
        dataset="world:test", setups=("standalone", "rag"), home=str(workdir / "home"), limit=limit, torch_threads=1
    )
    rows, runs = [], {}
    for engine, workers in (("local", 1), ("ray", 2)):
        t0 = time.perf_counter()
        runs[engine] = run_audit(
            config,
            workdir / f"audit-{engine}",
            engine="ray" if engine == "ray" else "local",
            workers=workers,
        )
        rows.append({"engine": engine, "workers": workers, "wall_s": time.perf_counter() - t0})

    def untimed(engine: str, setup: str) -> list[Any]:
        return [
            dataclasses.replace(r, answer=dataclasses.replace(r.answer, latency_s=0.0))
            for r in runs[engine].records[setup]
        ]

    same = all(untimed("ray", s) == untimed("local", s) for s in config.setups)
    n = sum(len(v) for v in runs["local"].records.values())
    for row in rows:
        row.update({"records": n, "identical_records": same})
    return rows


# -- output ------------------------------------------------------------------------------------------------


def table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of ``rows`` (floats to 3 significant places)."""
    if not rows:
        return ""
    keys = list(rows[0])

    def cell(value: Any) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kg-quads", type=int, default=0, help="quads for the KG table (0: skip)")
    parser.add_argument("--queries", type=int, default=200, help="queries per SPARQL pattern / vector size")
    parser.add_argument(
        "--warmup", type=int, default=1000, help="KG lookups per pattern on other keys before timing (0: none)"
    )
    parser.add_argument("--vector-sizes", default="", help="comma-separated sizes for the vector table")
    parser.add_argument("--base", type=int, default=5000, help="real MiniLM embeddings behind derived vectors")
    parser.add_argument("--audit", action="store_true", help="run the audit table")
    parser.add_argument("--audit-limit", type=int, help="questions of world:test (default: all)")
    parser.add_argument("--workdir", type=Path, help="where stores are written (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true", help="query KG stores already loaded in --workdir")
    parser.add_argument("--kg-stores", default=",".join(KG_STORES), help="comma-separated, of: sqlite,embedded,server")
    parser.add_argument("--server-timeout", type=float, default=120.0, help="seconds a server query may take")
    parser.add_argument("--milvus-index", default="HNSW", choices=MILVUS_INDEXES, help="milvus-lite's index type")
    parser.add_argument("--vector-systems", default="faiss,milvus", help="comma-separated, of: faiss,milvus")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    workdir: Path = args.workdir or Path(tempfile.mkdtemp(prefix="engines-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    try:
        if args.kg_quads:
            stores = [s.strip() for s in args.kg_stores.split(",") if s.strip()]
            if unknown := set(stores) - set(KG_STORES):
                parser.error(f"unknown --kg-stores {sorted(unknown)}; choose from {', '.join(KG_STORES)}")
            result["kg"] = bench_kg(
                args.kg_quads,
                args.queries,
                workdir,
                reuse=args.reuse,
                stores=stores,
                server_query_timeout_s=args.server_timeout,
                warmup=args.warmup,
            )
        if args.vector_sizes:
            sizes = [int(s) for s in args.vector_sizes.split(",")]
            systems = [s.strip() for s in args.vector_systems.split(",") if s.strip()]
            if unknown := set(systems) - {"faiss", "milvus"}:
                parser.error(f"unknown --vector-systems {sorted(unknown)}; choose from faiss, milvus")
            result["vectors"] = bench_vectors(
                sizes, args.base, args.queries, workdir, milvus_index=args.milvus_index, systems=systems
            )
        if args.audit:
            result["audit"] = bench_audit(args.audit_limit, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    out = json.dumps(result, indent=2) if args.json else "".join(f"\n## {n}\n\n{table(r)}\n" for n, r in result.items())
    sys.stdout.write(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
