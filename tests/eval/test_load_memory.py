"""Loading the reference world into the working memory (vector memory + KG), and the CLI around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.config import open_home
from agent.wiring import open_working_memory
from eval.world._build import subset_world
from eval.world._load_memory import WORLD_SCOPE, load_world_into, world_documents

RELATIONS = ("company_ceo", "person_mother", "doctoral_advisor")


def test_unknown_facts_go_in_known_ones_only_on_request(tmp_path: Path, bundled_world: Any, minilm: Any) -> None:
    world = subset_world(bundled_world, RELATIONS, n_known=6, n_unknown=6)
    unknown_docs = world_documents(world)
    ticks: list[int] = []
    with open_working_memory(open_home(tmp_path), embedder=minilm) as wm:
        report = load_world_into(world, wm.db, wm.memory, wm.graph, batch_size=4, progress=ticks.append)
        assert report.documents == len(unknown_docs) == sum(ticks)
        assert wm.memory.count(scope=WORLD_SCOPE) == len(unknown_docs)
        fact = next(f for f in world.facts if f.split == "unknown")
        assert [a.triple.object for a in wm.graph.facts(fact.subject, fact.relation)] == [fact.object]
        known = next(f for f in world.facts if f.split == "known")
        assert wm.graph.facts(known.subject, known.relation) == []

        again = load_world_into(world, wm.db, wm.memory, wm.graph)
        assert (again.documents, again.skipped) == (0, len(unknown_docs))

        more = load_world_into(world, wm.db, wm.memory, wm.graph, include_known=True)
        assert more.documents == len(world.documents) - len(unknown_docs)
        assert [a.triple.object for a in wm.graph.facts(known.subject, known.relation)] == [known.object]
        hit = wm.memory.search(f"{fact.subject}", k=3, scope=WORLD_SCOPE)[0]
        assert hit.item.metadata["split"] in ("known", "unknown")
        assert (hit.item.source or "").startswith("world:")


@pytest.mark.slow
def test_cli_loads_the_world_then_retrieves_with_citations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bundled_world: Any
) -> None:
    home = str(tmp_path / "home")
    assert main(["--home", home, "memory", "load-world"]) == 0
    out = capsys.readouterr().out
    n = len(world_documents(bundled_world))
    assert f"loaded {n} documents" in out
    fact = next(f for f in bundled_world.facts if f.split == "unknown" and f.relation == "company_ceo")
    assert main(["--home", home, "retrieve", f"Who is the CEO of {fact.subject}?", "--agent", "world"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert fact.object in first and "[both]" in first
    assert main(["--home", home, "kg", "facts", fact.subject]) == 0
    assert fact.object in capsys.readouterr().out
    assert main(["--home", home, "memory", "search", "chief executive", "--user", "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err


def test_a_load_through_the_pipeline_is_one_trusted_logged_edit_that_rolls_back_whole(
    tmp_path: Path, bundled_world: Any, minilm: Any
) -> None:
    from agent.config import TellSettings
    from agent.tell import BulkFact, TellPipeline
    from memory import Triple
    from tools.errors import PermissionDeniedError

    world = subset_world(bundled_world, RELATIONS, n_known=6, n_unknown=6)
    docs = world_documents(world)
    with open_working_memory(open_home(tmp_path), embedder=minilm) as wm:
        pipeline = TellPipeline.open(wm, TellSettings(roles={"root": "admin", "mallory": "untrusted"}))
        report = load_world_into(world, wm.db, wm.memory, wm.graph, batch_size=4, pipeline=pipeline)
        assert report.edit_id is not None and report.documents == len(docs) > 4  # several batches, one edit
        record = pipeline.log.edit(report.edit_id)
        assert (record.namespace, record.status, len(record.triples)) == ("world", "applied", len(docs))
        fact = next(f for f in world.facts if f.split == "unknown" and f.relation == "company_ceo")
        [a] = wm.graph.facts(fact.subject, fact.relation, namespaces=["world"])
        assert (a.who, a.edit_id, a.namespace) == ("world", report.edit_id, "world")
        # a subject's history lists its own assertions, not the whole load
        assert all(len(r.triples) == 1 for r in pipeline.history(fact.subject))
        # still trusted: an untrusted user's contradiction is held
        held = pipeline.tell(f"The CEO of {fact.subject} is Evil Eve.", user="mallory")
        assert held.status == "quarantined"
        with pytest.raises(PermissionDeniedError):  # only trusted sources load in bulk
            pipeline.load([BulkFact(text="x", triple=Triple("A", "company_ceo", "B"))], who="mallory")

        pipeline.rollback(report.edit_id, "root")
        assert WORLD_SCOPE not in wm.memory.scopes()  # every item the load wrote is gone
        assert wm.graph.facts(fact.subject, fact.relation, namespaces=["world"]) == []
        again = load_world_into(world, wm.db, wm.memory, wm.graph, pipeline=pipeline)  # a rolled-back load reloads
        assert again.documents == len(docs) and again.edit_id != report.edit_id


def test_the_worlds_concepts_are_loaded_once_with_the_facts(tmp_path: Path, bundled_world: Any, minilm: Any) -> None:
    from dataclasses import replace

    from kg import ConceptGraph

    world = replace(subset_world(bundled_world, RELATIONS, n_known=2, n_unknown=2), concepts=bundled_world.concepts)
    with open_working_memory(open_home(tmp_path), embedder=minilm) as wm:
        report = load_world_into(world, wm.db, wm.memory, wm.graph)
        concepts = ConceptGraph(wm.graph)
        assert report.concepts > 2 * len(world.concepts)  # definitions, subclass links and instances
        assert len(concepts.concepts()) == len(world.concepts)
        city = next(c for c in world.concepts if c.id == "city")
        assert concepts.definition("city").triple.object == city.definition  # type: ignore[union-attr]
        assert concepts.is_instance(city.instances[0], "place").answer is True  # through subclass_of
        quads = set(wm.graph.store.quads(None, None, None, None))
        assert load_world_into(world, wm.db, wm.memory, wm.graph).concepts == 0  # a second load is a no-op
        assert set(wm.graph.store.quads(None, None, None, None)) == quads
        none = load_world_into(replace(world, concepts=()), wm.db, wm.memory, wm.graph)
        assert none.concepts == 0
