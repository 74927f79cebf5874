"""Retrieval recall@k on Chinese and English questions: vector only vs vector + BM25 fused by RRF (issue 23).

One memory holds both corpora, as a bilingual deployment would: the world's English documents (one sentence
per fact) and the Chinese slice's statements (one per fact, ``eval/world/data/slice_facts.jsonl``). A question
is a hit when a passage of its own fact is among the top ``k`` memory hits. Questions: the world's answerable
English questions and the Chinese slice's answerable questions (training and held-out templates), a seeded
sample of ``--limit`` each.

``rrf+gate`` is what the agent retrieves (``HybridRetriever(fusion="rrf", zh_gate=...)``: a Chinese question keeps
the passages that name its subject, :mod:`agent.zh_gate`; English questions are not gated). With ``--absent F``
the facts of a seeded share ``F`` of the sampled questions are left out of memory: recall is over the others,
and ``with_passage`` is the share of the absent ones that still get a passage (every one without the gate: a
reader then answers from another fact's passage; with it, only passages naming the subject, e.g. the English
document of a Chinese landmark question).

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
from typing import Any

from agent.retrieval import HybridRetriever
from agent.zh_gate import ZhSubjectGate
from eval.world import load_world
from kg import load_schema
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
    parser.add_argument("--absent", type=float, default=0.0, help="share of sampled questions whose fact is left out")
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
    absent = {f for rows in sets.values() for _, f in rows if rng.random() < args.absent}
    docs = [(t, f) for t, f in docs if f not in absent]
    gate = ZhSubjectGate(load_schema().zh_templates())
    embedder = SentenceTransformerEmbedder()
    out: dict[str, Any] = {"documents": len(docs), "k": args.k}
    with tempfile.TemporaryDirectory() as tmp, VectorMemory.open(Path(tmp), embedder) as memory:
        t0 = time.perf_counter()
        memory.add_many([t for t, _ in docs], scope=SCOPE, metadatas=[{"fact": f} for _, f in docs])
        out["ingest_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        memory.search_lexical("warm up", k=1)  # builds the BM25 index once
        out["bm25_build_s"] = round(time.perf_counter() - t0, 2)
        none: Any = None
        gated = HybridRetriever(memory, none, none, none, k=args.k, fusion="rrf", zh_gate=gate)
        for name, rows in sets.items():
            vector = [memory.search(t, k=args.k, scope=SCOPE) for t, _ in rows]
            lexical = [memory.search_lexical(t, k=args.k, scope=SCOPE) for t, _ in rows]
            # as HybridRetriever(fusion="rrf").memory_hits does without the gate
            fused = [reciprocal_rank_fusion([v, w])[: args.k] for v, w in zip(vector, lexical, strict=True)]
            kept = [gated.memory_hits(t, k=args.k, scope=SCOPE) for t, _ in rows]
            present = [i for i, (_, f) in enumerate(rows) if f not in absent]
            gold = [rows[i][1] for i in present]
            out[name] = {
                "questions": len(present),
                **{
                    system: round(_recall([hits[i] for i in present], gold, args.k), 4)
                    for system, hits in (("vector", vector), ("bm25", lexical), ("rrf", fused), ("rrf+gate", kept))
                },
            }
            gone = [i for i, (_, f) in enumerate(rows) if f in absent]
            if gone:
                out[name]["absent"] = {
                    "questions": len(gone),
                    "with_passage": {
                        system: round(sum(bool(hits[i]) for i in gone) / len(gone), 4)
                        for system, hits in (("rrf", fused), ("rrf+gate", kept))
                    },
                }
            logger.info("%s: %s", name, out[name])
    sys.stdout.write((json.dumps(out, indent=2) if args.json else str(out)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
