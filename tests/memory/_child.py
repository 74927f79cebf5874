"""A writer process for the concurrency tests: adds items to a memory directory, printing each id once stored.

Usage: python -m tests.memory._child ROOT PREFIX COUNT [--save-every N]
Item ``i`` has the text ``"<PREFIX> record <i>"``; its id is printed (and flushed) only after ``add`` returned,
so every printed id is an acknowledged write.
"""

from __future__ import annotations

import argparse
import sys

from memory import IndexConfig, Scope, VectorMemory
from tests.memory.fakes import HashEmbedder


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("prefix")
    parser.add_argument("count", type=int)
    parser.add_argument("--save-every", type=int, default=10_000)
    args = parser.parse_args(argv)
    memory = VectorMemory.open(args.root, HashEmbedder(), IndexConfig(save_every=args.save_every))
    i = 0
    while i < args.count:
        if i % 5 == 4 and i + 2 <= args.count:  # some batches too, to mix transaction sizes
            texts = [f"{args.prefix} record {i}", f"{args.prefix} record {i + 1}"]
            ids = [item.id for item in memory.add_many(texts, scope=Scope(agent_id=args.prefix))]
        else:
            ids = [memory.add(f"{args.prefix} record {i}", scope=Scope(agent_id=args.prefix)).id]
        for item_id in ids:
            print(item_id, flush=True)
        i += len(ids)
    memory.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
