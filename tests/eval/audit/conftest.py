"""Fixtures of the audit tests: a home whose working memory holds a slice of the audit's world (built once).

The slice keeps the tests fast: the UNKNOWN documents and EDITS that the sampled test questions need, plus a
few hundred other documents as distractors for retrieval. Configs built with :func:`audit_config` use it as
it is (``prepare_memory=False``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

SAMPLES = (8, 12, 16)  # the --limit values the tests use
DISTRACTORS = 200


@pytest.fixture(scope="session")
def audit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A factagent home with a slice of the world in memory and KG (see the module docstring)."""
    from agent.config import open_home
    from agent.wiring import open_working_memory
    from eval.audit import load_dataset, prepare_world_memory, sample_evenly
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR

    world = load_world(DATA_DIR)
    questions = load_dataset("world:test").questions
    wanted = {q.id for n in SAMPLES for q in sample_evenly(questions, n)}
    by_id = {q.id: q for q in world.questions}
    facts = {by_id[i].fact_id for i in wanted} | {f.id for f in world.facts_in("unknown")[:DISTRACTORS]}
    edits = {by_id[i].edit_id for i in wanted}
    small = replace(
        world,
        documents=tuple(d for d in world.documents if d.fact_id in facts),
        edits=tuple(e for e in world.edits if e.id in edits),
    )
    home = tmp_path_factory.mktemp("audit-home")
    with open_working_memory(open_home(home)) as wm:
        prepare_world_memory(wm, small)
    return home


def audit_config(home: Path, **changes: Any) -> Any:
    """A quick audit of the world's test questions on the bundled model over ``home``'s memory."""
    from eval.audit import AuditConfig

    base = AuditConfig(
        dataset="world:test",
        setups=("standalone", "rag"),
        home=str(home),
        limit=16,
        batch_size=4,
        resamples=50,
        torch_threads=1,
        prepare_memory=False,
    )
    return replace(base, **changes)
