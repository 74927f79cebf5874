"""Entity names that differ only in punctuation stay distinct entities (issue 16, item 7)."""

from __future__ import annotations

from agent import Agent
from kg import EntityLinker, name_key
from kg._records import Entity


def test_names_differing_only_in_punctuation_are_not_merged(agent: Agent) -> None:
    first = agent.tell("The CEO of ?x is Ann Quill.", user="tess")
    second = agent.tell('The CEO of """x""" is Bo Reed.', user="tess")
    assert first.status == second.status == "applied"
    assert second.triples[0].subject != "?x" and not second.superseded  # a new entity, nothing replaced
    assert agent.ask("Who is the CEO of ?x?").text == "Ann Quill"
    assert agent.ask('Who is the CEO of """x"""?').text == "Bo Reed"


def test_punctuation_that_only_ends_a_word_still_links() -> None:
    yum = Entity("https://factagent.dev/entity/Yum!_Brands", "Yum! Brands", ())
    cpp = Entity("https://factagent.dev/entity/C%2B%2B", "C++", ())
    linker = EntityLinker([yum, cpp])
    assert [link.entity.label for link in linker.link("yum brands")] == ["Yum! Brands"]
    assert [m.link.entity.label for m in linker.find_mentions("Who is the CEO of Yum Brands?")] == ["Yum! Brands"]
    assert linker.link("C") == [] and [link.entity.label for link in linker.link("c++")] == ["C++"]
    assert name_key("St. Louis") == name_key("St Louis") and name_key("?x") != name_key('"x"')
