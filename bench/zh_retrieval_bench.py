"""Retrieval recall@k on Chinese and English questions: vector only vs vector + BM25 fused by RRF (issue 23).

One memory holds both corpora, as a bilingual deployment would: the world's English documents (one sentence
per fact) and the Chinese slice's statements (one per fact, ``eval/world/data/slice_facts.jsonl``). A question
is a hit when a passage of its own fact is among the top ``k`` memory hits. Questions: the world's answerable
English questions and the Chinese slice's answerable questions (training and held-out templates), a seeded
sample of ``--limit`` each.

Example:
    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python bench/zh_retrieval_bench.py --limit 1000 --json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from eval.world import load_world
from memory import MemoryHit, Scope, SentenceTransformerEmbedder, VectorMemory, reciprocal_rank_fusion

logger = logging.getLogger("bench.zh_retrieval")
SCOPE = Scope(agent_id="world")


def _recall(hits: list[list[MemoryHit]], gold: list[str], k: int) -> float:
    found = [any(h.item.metadata.get("fact") == g for h in row[:k]) for row, g in zip(hits, gold, strict=True)]
    return sum(found) / max(1, len(found))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000, help="questions per language (seeded sample)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    world = load_world(Path(__file__).resolve().parents[1] / "eval" / "world" / "data")
    rng = random.Random(args.seed)
    docs = [(d.text, d.fact_id) for d in world.documents] + [
        (f.statement, f.id) for f in world.slice_facts if f.language == "zh"
    ]
    sets = {
        "en": [(q.text, q.fact_id) for q in world.questions if q.answers and q.fact_id],
        "zh": [(q.text, q.fact_id) for q in world.slice_questions if q.id.startswith("zq") and q.answers and q.fact_id],
    }
    for name, rows in sets.items():
        sets[name] = rng.sample(rows, min(args.limit, len(rows)))
    embedder = SentenceTransformerEmbedder()
    out: dict[str, object] = {"documents": len(docs), "k": args.k}
    with tempfile.TemporaryDirectory() as tmp, VectorMemory.open(Path(tmp), embedder) as memory:
        t0 = time.perf_counter()
        memory.add_many([t for t, _ in docs], scope=SCOPE, metadatas=[{"fact": f} for _, f in docs])
        out["ingest_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        memory.search_lexical("warm up", k=1)  # builds the BM25 index once
        out["bm25_build_s"] = round(time.perf_counter() - t0, 2)
        for name, rows in sets.items():
            vector = [memory.search(t, k=args.k, scope=SCOPE) for t, _ in rows]
            lexical = [memory.search_lexical(t, k=args.k, scope=SCOPE) for t, _ in rows]
            # as HybridRetriever(fusion="rrf").memory_hits does
            fused = [reciprocal_rank_fusion([v, w])[: args.k] for v, w in zip(vector, lexical, strict=True)]
            gold = [f for _, f in rows]
            out[name] = {
                "questions": len(rows),
                "vector": round(_recall(vector, gold, args.k), 4),
                "bm25": round(_recall(lexical, gold, args.k), 4),
                "rrf": round(_recall(fused, gold, args.k), 4),
            }
            logger.info("%s: %s", name, out[name])
    sys.stdout.write((json.dumps(out, indent=2) if args.json else str(out)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
