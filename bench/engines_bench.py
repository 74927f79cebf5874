"""Engines benchmark (issue 25): the embedded and distributed engines side by side, in one run.

Three tables, each optional:

1. **kg** (``--kg-quads N``): load N quads shaped like the knowledge graph's (each assertion in its own named
   graph) into the SQLite store, embedded Oxigraph (its bulk loader, then its transactional path is not
   used) and an ``oxigraph serve`` process (through :class:`kg.SPARQLEndpointStore` updates, as the product
   writes); then p50 / p90 of three SPARQL pattern queries with bound variables (subject lookup, object
   lookup, a two-hop join), ``--queries`` each.
2. **vectors** (``--vector-sizes 100000,1000000``): FAISS (the memory's ``FaissIndex``, ``auto`` structure)
   vs Milvus (milvus-lite, HNSW): build time, query p50 and recall@10 against exact search. Vectors are
   real MiniLM embeddings of ``--base`` world sentences and, beyond those, derived neighbours
   (:func:`bench._data.derived_vectors`), as in ``bench/memory_bench.py``.
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
from typing import Any

import numpy as np
from rdflib import Literal, URIRef

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


def _time_queries(store: Any, n_entities: int, queries: int, seed: int) -> dict[str, Any]:
    """p50 / p90 (ms) of each of :data:`QUERIES`; a query the store did not answer within its timeout
    (a :class:`~tools.errors.StoreError` from the remote store) is reported as ``"no answer in N s"``."""
    from tools.errors import StoreError

    rng = random.Random(seed)
    out: dict[str, Any] = {}
    for name, (sparql, var, share) in QUERIES.items():

        def bind(var: str = var) -> dict[str, Any]:
            return {var: URIRef(f"{EX}entity/e{rng.randrange(n_entities)}")} if var else {}

        t0 = time.perf_counter()
        try:
            store.query(sparql, bind())  # parse once (cached), warm the engine
        except StoreError as exc:
            waited = time.perf_counter() - t0
            logger.warning("%s: %s query gave up after %.0f s: %s", type(store).__name__, name, waited, exc)
            out[f"{name}_p50_ms"] = out[f"{name}_p90_ms"] = f"no answer in {waited:.0f} s"
            continue
        times, found = [], []  # found: the times of queries that returned rows (most lookups find nothing)
        for _ in range(max(3, int(share * queries))):
            bound = bind()
            t0 = time.perf_counter()
            rows = store.query(sparql, bound)
            times.append(time.perf_counter() - t0)
            if rows:
                found.append(times[-1])
        times.sort()
        out[f"{name}_p50_ms"] = 1000 * statistics.median(times)
        out[f"{name}_p90_ms"] = 1000 * times[int(0.9 * (len(times) - 1))]
        out[f"{name}_empty_share"] = 1 - len(found) / len(times)
        out[f"{name}_found_p50_ms"] = 1000 * statistics.median(found) if found else None
    return out


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
) -> list[dict[str, Any]]:
    """Load and query the chosen ``stores`` (of :data:`KG_STORES`); one row per store.

    ``reuse``: a store already holding ``n`` quads in ``workdir`` is queried, not loaded again (so a 1M
    load can be done store by store, and the side-by-side query table taken in one later run). Server
    queries get ``server_query_timeout_s`` each; one that does not answer is reported as such.
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
        row.update(_time_queries(queried or store, n_entities, queries, seed=1))
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
        rows[-1].update(_time_queries(oxigraph, n_entities, queries, seed=2))  # other entities: none cached
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
            mine, theirs = row[f"{name}_p50_ms"], base and base[f"{name}_p50_ms"]
            both = isinstance(mine, float) and isinstance(theirs, float)
            row[f"{name}_speedup"] = theirs / mine if both else None
    return rows


# -- vectors -----------------------------------------------------------------------------------------------


def bench_vectors(sizes: Sequence[int], base_n: int, queries: int, workdir: Path) -> list[dict[str, Any]]:
    """FAISS vs milvus-lite at each size; one row per (system, size)."""
    from bench._data import derived_vectors, exact_top_k, fact_sentences, query_texts, recall_at_k
    from memory import FaissIndex, IndexConfig, SentenceTransformerEmbedder
    from memory._milvus_index import MilvusConfig, MilvusIndex, connect

    embedder = SentenceTransformerEmbedder()
    base = np.asarray(embedder.embed(fact_sentences(base_n)), dtype=np.float32)
    qv = np.asarray(embedder.embed(query_texts(queries)), dtype=np.float32)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        vectors = derived_vectors(base, max(size, base_n))[:size]
        truth = exact_top_k(vectors, qv, 10)
        ids = np.arange(size, dtype=np.int64)
        config = MilvusConfig(uri=str(workdir / f"milvus-{size}.db"), collection=f"bench_{size}")
        dim = int(vectors.shape[1])
        indexes: dict[str, Any] = {
            "faiss (auto)": FaissIndex(dim, IndexConfig(use_gpu=False)),
            "milvus-lite (HNSW)": MilvusIndex.create(connect(config), config, dim),
        }
        for name, index in indexes.items():
            t0 = time.perf_counter()
            for start in range(0, size, 50_000):
                index.add(ids[start : start + 50_000], vectors[start : start + 50_000])
            if hasattr(index, "wait_indexed"):  # Milvus builds its index in the background: count it in
                index.wait_indexed()
            build = time.perf_counter() - t0
            index.search(qv[:1], 10)  # warm (Milvus loads the collection)
            found, times = [], []
            for q in qv:
                t0 = time.perf_counter()
                _, hit = index.search(q.reshape(1, -1), 10)
                times.append(time.perf_counter() - t0)
                found.append([int(i) for i in hit[0]])
            row = {
                "system": name,
                "vectors": size,
                "kind": index.kind,
                "build_s": build,
                "query_p50_ms": 1000 * statistics.median(times),
                "recall_at_10": recall_at_k(found, truth, 10),
            }
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
    parser.add_argument("--vector-sizes", default="", help="comma-separated sizes for the vector table")
    parser.add_argument("--base", type=int, default=5000, help="real MiniLM embeddings behind derived vectors")
    parser.add_argument("--audit", action="store_true", help="run the audit table")
    parser.add_argument("--audit-limit", type=int, help="questions of world:test (default: all)")
    parser.add_argument("--workdir", type=Path, help="where stores are written (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true", help="query KG stores already loaded in --workdir")
    parser.add_argument("--kg-stores", default=",".join(KG_STORES), help="comma-separated, of: sqlite,embedded,server")
    parser.add_argument("--server-timeout", type=float, default=120.0, help="seconds a server query may take")
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
            )
        if args.vector_sizes:
            sizes = [int(s) for s in args.vector_sizes.split(",")]
            result["vectors"] = bench_vectors(sizes, args.base, args.queries, workdir)
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
