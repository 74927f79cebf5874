"""The agent over the real engines: embedded Oxigraph with Milvus (milvus-lite) vectors, and an ``oxigraph serve``
endpoint with FAISS.

Same flow as ``test_ask``: a KG fact answered with a citation, a told edit changes the answer, its rollback
restores it; the quads live in Oxigraph and (first case) the vectors in Milvus, not in the SQLite file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import Agent, PolicyThresholds
from agent.config import TellSettings, open_home
from agent.tell import TellPipeline
from agent.wiring import open_working_memory
from eval.world import World
from eval.world._load_memory import load_world_into
from kg import OxigraphTripleStore, SPARQLEndpointStore
from tests.agent.tell.conftest import unknown_fact
from tests.kg.oxigraph_server import oxigraph_server
from tools.lm import HFLanguageModel


@pytest.fixture(params=["embedded", "server"])
def kg_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "embedded":
        yield '[kg]\nstore = "oxigraph"\n[memory]\nindex = "milvus"\n'
        return
    with oxigraph_server(tmp_path / "server-data", union_default_graph=False) as server:
        yield (
            f'[kg]\nquery_endpoint = "{server.query_url}"\nupdate_endpoint = "{server.update_url}"\n'
            "maintain_default_graph = true\n"
        )


def test_ask_tell_rollback_over_oxigraph(
    kg_config: str, tmp_path: Path, small_world: World, minilm: Any, gpt2: HFLanguageModel
) -> None:
    root = tmp_path / "home"
    root.mkdir()
    (root / "config.toml").write_text(kg_config)
    with open_working_memory(open_home(root), embedder=minilm) as wm:
        assert isinstance(wm.store, (OxigraphTripleStore, SPARQLEndpointStore))
        assert wm.memory.index_kind == ("milvus" if "milvus" in kg_config else "flat")
        load_world_into(small_world, wm.db, wm.memory, wm.graph)
        wm.refresh_entities()
        assert len(wm.store) > 0
        tell = TellPipeline.open(wm, TellSettings(roles={"tess": "trusted"}))
        agent = Agent(wm, gpt2, thresholds=PolicyThresholds(), tell=tell)

        fact = unknown_fact(small_world, "company_ceo")
        question = small_world.relation("company_ceo").questions[0].replace("{}", fact.subject)
        before = agent.ask(question)
        assert (before.action, before.text) == ("kg", fact.object) and before.citations
        result = agent.tell(f"The CEO of {fact.subject} is Jane Roe.", user="tess")
        assert result.status == "applied" and result.edit_id
        assert agent.ask(question).text == "Jane Roe"
        agent.rollback(result.edit_id, user="tess")
        assert agent.ask(question).text == fact.object
