"""Concepts through the agent opened on a home: the world's concepts loaded with its facts, definitions told
by trusted users (logged like any edit), asked with citations, rolled back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent import Agent
from agent.config import open_home
from agent.tell import TellResult
from agent.wiring import open_working_memory
from eval.world import World
from eval.world._load_memory import load_world_into
from tools.errors import PermissionDeniedError
from tools.lm import HFLanguageModel

COUNTRY = "a nation with its own territory and government"


@pytest.fixture
def concept_agent(
    tmp_path: Path, small_world: World, bundled_world: World, gpt2: HFLanguageModel, minilm: Any
) -> Iterator[Agent]:
    (tmp_path / "config.toml").write_text('[tell]\nroles = { tess = "trusted" }\n')
    home = open_home(tmp_path)
    with open_working_memory(home, embedder=minilm) as wm:  # the loader the CLI and demo use
        load_world_into(replace(small_world, concepts=bundled_world.concepts), wm.db, wm.memory, wm.graph)
    agent = Agent.open(home, gpt2)
    yield agent
    agent.close()


def _quads(agent: Agent) -> set[Any]:
    return set(agent.wm.graph.store.quads(None, None, None, None))


def test_concept_questions_are_answered_from_the_home_kg_with_citations(concept_agent: Agent) -> None:
    what = concept_agent.ask("What is a city?")
    assert (what.action, what.text) == ("kg", "a large town where many people live and work")
    assert what.citations and what.citations[0].citation.assertion_id
    yes, no = concept_agent.ask_many(["Is Ankara a place?", "Is Danish a city?"])
    assert (yes.action, yes.text, no.text) == ("kg", "yes", "no")
    assert [e.citation.triple.object for e in yes.citations] == ["city", "place"]  # type: ignore[union-attr]


def test_a_told_definition_is_a_logged_edit_that_rolls_back_exactly(concept_agent: Agent) -> None:
    before = _quads(concept_agent)
    assert concept_agent.ask("Is Armenia a city?").text == "no"
    told = concept_agent.tell(f"A city is {COUNTRY}.", user="tess")
    assert isinstance(told, TellResult) and told.status == "applied" and told.edit_id
    assert "conflict" in told.message and told.superseded  # stored cities contradict it; the old definition
    assert concept_agent.ask("What is a city?").text == COUNTRY
    assert concept_agent.ask("Is Armenia a city?").text == "yes"  # read through the new definition
    assert concept_agent.pipeline.log.edit(told.edit_id).who == "user:tess"
    with pytest.raises(PermissionDeniedError):
        concept_agent.rollback(told.edit_id, user="bob")  # neither its author nor trusted
    done = concept_agent.rollback(told.edit_id, user="tess")
    assert done.assertions >= 1 and concept_agent.pipeline.log.edit(told.edit_id).status == "rolled_back"
    assert _quads(concept_agent) == before
    assert concept_agent.ask("What is a city?").text == "a large town where many people live and work"


def test_an_untrusted_definition_changes_nothing(concept_agent: Agent) -> None:
    before = _quads(concept_agent)
    told = concept_agent.tell(f"A city is {COUNTRY}.", user="mallory")
    assert told.status == "quarantined" and told.edit_id is None
    assert _quads(concept_agent) == before


def test_concept_classes_are_not_linked_as_the_subjects_of_fact_questions(concept_agent: Agent) -> None:
    """A class label said in passing ("Which city ...") must not become a fact question's subject (it made
    the demo answer an unanswerable question from retrieval); the classes' instances still link."""

    def linked(question: str) -> list[str]:
        return [m.link.entity.label for m in concept_agent.wm.entities.find_mentions(question)]

    assert linked("Which city is Ankara in, and is it a place?") == ["Ankara"]
    told = concept_agent.tell("A gizmo is a small mechanical device.", user="tess")  # a new class, told
    assert told.status == "applied"
    concept_agent.wm.sync_entities()
    assert linked("Where is the gizmo of Ankara?") == ["Ankara"]
    assert concept_agent.ask("What is a gizmo?").text == "a small mechanical device"
