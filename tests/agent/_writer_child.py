"""Child process for the reliability tests: a stream of memory + KG writes, one transaction each.

Usage: python -m tests.agent._writer_child HOME PREFIX COUNT
Prints ``ok <i>`` after write ``i`` has committed (so the parent knows which writes were acknowledged).
"""

from __future__ import annotations

import sys

from agent.config import open_home
from agent.wiring import open_working_memory
from kg import Provenance
from memory import Scope, Triple
from tests.memory.fakes import HashEmbedder


def main(home: str, prefix: str, count: int) -> None:
    with open_working_memory(open_home(home), embedder=HashEmbedder(384)) as wm:
        for i in range(count):
            triple = Triple(f"{prefix} company {i}", "company_ceo", f"{prefix} person {i}")
            with wm.transaction():
                wm.memory.add(
                    f"The CEO of {triple.subject} is {triple.object}.",
                    scope=Scope(user_id=prefix),
                    triple=triple,
                    edit_id=f"{prefix}-{i}",
                )
                wm.graph.add(triple, Provenance(who=prefix, edit_id=f"{prefix}-{i}"))
            print(f"ok {i}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
