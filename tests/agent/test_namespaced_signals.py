"""KG evidence for a question is read as the caller's namespaces see it, even where they hold no memory."""

from __future__ import annotations

from agent import Agent
from kg import Provenance
from memory import Scope, Triple

QUESTION = "Who is the CEO of Zorblax Corp?"


def _kg_objects(agent: Agent, *namespaces: str) -> list[str]:
    signals = agent.collector.collect([QUESTION], [Scope(agent_id=n) for n in namespaces])[0]
    return [e.citation.triple.object for e in signals.kg if e.citation.triple is not None]


def test_a_shared_namespace_with_kg_facts_and_no_memory_still_answers(agent: Agent) -> None:
    agent.wm.graph.add(Triple("Zorblax Corp", "company_ceo", "Kay Only"), Provenance("world:load", namespace="kgonly"))
    agent.wm.refresh_entities()
    # Neither "nova" nor "kgonly" holds any memory: the KG hit must not be dropped with the memory search.
    assert _kg_objects(agent, "nova", "kgonly") == ["Kay Only"]
    assert _kg_objects(agent, "nova", "world") == []  # a namespace the caller does not read is never seen
    assert agent.ask(QUESTION, namespace="nova").text != "Kay Only"  # agent.shared is ("world",) only
