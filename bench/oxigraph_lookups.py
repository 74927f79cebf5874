"""Where a bound lookup's time goes in the embedded Oxigraph store (issue 25): microseconds per lookup, in-process.

For each pattern query of ``bench/engines_bench.py`` (subject, object, two-hop) it times, on the same keys:

* ``query_us``: ``OxigraphTripleStore.query(sparql, {var: key})``, all of it (checks, plan, lookups, rows);
* ``probe_us``: the first index probe alone (``Store.quads_for_pattern`` on the default graph, one ``next``),
  the part Python cannot cut;
* ``python_us``: ``query_us - probe_us`` (for the two-hop join, which probes again per hit, an upper bound).

The keys are drawn once and every key is looked up once before timing (``--warm`` rounds), so the figures
are warm-cache costs: RocksDB block reads for fresh keys come on top (the engines bench times those). Each key's
query and probe are timed back to back (on a shared machine both then see the same load; ``python_per_probe``
is the Python's share relative to the probe) and the medians are over all rounds' lookups. The store is an existing one
(``--store``, e.g. the engines bench's ``<workdir>/oxigraph``) or ``--quads`` of the engines bench's quads
loaded in memory.

Example:
    PYTHONPATH=. .venv/bin/python bench/oxigraph_lookups.py --quads 200000 --keys 2000 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import URIRef

from bench.engines_bench import EX, QUERIES, RELATIONS, kg_quads

logger = logging.getLogger("bench.oxigraph_lookups")

# name -> (the engines bench's query, the relation of its first pattern, whether the key is its subject)
LOOKUPS = {
    "subject": (QUERIES["subject"][0], RELATIONS[3], True),
    "object": (QUERIES["object"][0], RELATIONS[5], False),
    "two-hop": (QUERIES["two-hop"][0], RELATIONS[1], True),
}


def _median_us(times: list[float]) -> float:
    return 1e6 * statistics.median(times)


def profile(store: Any, raw: ox.Store, n_entities: int, *, keys: int, rounds: int, seed: int) -> list[dict[str, Any]]:
    """One row per lookup of :data:`LOOKUPS` (``store`` an ``OxigraphTripleStore``, ``raw`` its pyoxigraph store)."""
    rng = random.Random(seed)
    default = ox.DefaultGraph()
    rows = []
    for name, (sparql, relation, by_subject) in LOOKUPS.items():
        var = QUERIES[name][1]
        drawn = [URIRef(f"{EX}entity/e{rng.randrange(n_entities)}") for _ in range(keys)]
        predicate = ox.NamedNode(str(relation))
        for key in drawn:  # warm: the same keys' blocks in RocksDB's cache, the plan compiled
            store.query(sparql, {var: key})
        query_times: list[float] = []
        probe_times: list[float] = []
        hits = 0
        for _ in range(rounds):
            for key in drawn:  # query and probe of each key back to back: both see the machine alike
                bindings = {var: key}
                t0 = time.perf_counter()
                rows_found = store.query(sparql, bindings)
                t1 = time.perf_counter()
                node = ox.NamedNode(str(key))
                t2 = time.perf_counter()
                if by_subject:
                    next(raw.quads_for_pattern(node, predicate, None, default), None)
                else:
                    next(raw.quads_for_pattern(None, predicate, node, default), None)
                t3 = time.perf_counter()
                query_times.append(t1 - t0)
                probe_times.append(t3 - t2)
                hits += bool(rows_found)
        query_us, probe_us = _median_us(query_times), _median_us(probe_times)
        rows.append(
            {
                "lookup": name,
                "query_us": query_us,
                "probe_us": probe_us,
                "python_us": query_us - probe_us,
                "python_per_probe": (query_us - probe_us) / probe_us,
                "hit_share": hits / len(query_times),
                "lookups": len(query_times),
            }
        )
        logger.info("%s", rows[-1])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, help="an OxigraphTripleStore directory (default: build in memory)")
    parser.add_argument("--quads", type=int, default=200_000, help="quads of the engines bench (store's size)")
    parser.add_argument("--keys", type=int, default=2000, help="keys per lookup")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the keys")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    from kg import OxigraphTripleStore

    store = OxigraphTripleStore(args.store)
    if args.store is None:
        store.bulk_load(kg_quads(args.quads))
    raw = store._store  # the same database, probed directly: the part Python cannot cut
    try:
        rows = profile(store, raw, max(args.quads // 4, 10), keys=args.keys, rounds=args.rounds, seed=args.seed)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        for row in rows:
            sys.stdout.write(
                f"{row['lookup']:8s} query {row['query_us']:6.2f} us  probe {row['probe_us']:5.2f} us  "
                f"python {row['python_us']:5.2f} us = {row['python_per_probe']:.2f} x probe  "
                f"(hits {row['hit_share']:.0%}, {row['lookups']} lookups)\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
