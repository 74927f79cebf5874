"""A Chinese question answered from the KG in Chinese: the object's ``@zh`` name (issue 23).

A small KG built here (no model, no fixtures): Chaville is in France, whose Chinese name is 法国; Moskva is in
Russia, which has no Chinese name in this KG.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from agent import ModelView, PolicyThresholds, Signals
from agent._policy import decide
from agent._question_links import QuestionLink, QuestionLinker
from agent._signals import SignalCollector
from agent.retrieval import Citation, Evidence, HybridRetriever
from kg import EntityLinker, KnowledgeGraph, MemoryTripleStore, Provenance, RelationLinker, load_schema
from memory import Triple
from tools.lm import PromptFormat

T = PolicyThresholds(kg_link=0.5, memory=0.5, rag_prob=0.3, require_support=True, model=0.6)


@pytest.fixture
def graph() -> KnowledgeGraph:
    graph = KnowledgeGraph(MemoryTripleStore(), load_schema())
    for subject, country in (("Chaville", "France"), ("Moskva", "Russia")):
        graph.add(Triple(subject, "landmark_in_country", country), Provenance(who="world", source=subject))
    graph.entity("France", labels={"zh": "法国"})
    return graph


def _linkers(graph: KnowledgeGraph) -> tuple[EntityLinker, RelationLinker]:
    schema = graph.schema
    return EntityLinker(graph.entities()), RelationLinker(schema.templates(), exact_templates=schema.zh_templates())


def _retriever(graph: KnowledgeGraph) -> HybridRetriever:
    none: Any = None  # no memory: kg_evidence reads only the KG
    return HybridRetriever(none, graph, *_linkers(graph))


def test_a_chinese_question_gets_the_objects_chinese_name(graph: KnowledgeGraph) -> None:
    retriever = _retriever(graph)
    [fact] = retriever.kg_evidence("Chaville在哪个国家？")
    assert fact.citation.triple == Triple("Chaville", "landmark_in_country", "France")  # the KG's own triple
    assert fact.object_label == "法国"
    assert decide(Signals("Chaville在哪个国家？", relation="landmark_in_country", kg=(fact,)), T).text == "法国"


def test_an_english_question_is_answered_as_before(graph: KnowledgeGraph) -> None:
    retriever = _retriever(graph)
    [fact] = retriever.kg_evidence("Which country is Chaville located in?")
    assert fact.object_label is None
    s = Signals("Which country is Chaville located in?", relation="landmark_in_country", kg=(fact,))
    assert (decide(s, T).action, decide(s, T).text) == ("kg", "France")


def _russia(question: str) -> Evidence:
    triple = Triple("Moskva", "landmark_in_country", "Russia")
    return Evidence("Moskva — country of landmark — Russia.", 1.0, "kg", Citation(assertion_id="a1", triple=triple))


def test_no_chinese_name_gives_way_to_a_chinese_answer_from_memory() -> None:
    question = "Moskva在哪个国家？"
    memory = (Evidence("Moskva位于俄罗斯。", 0.9, "memory", Citation(item_id="m1")),)
    s = Signals(
        question,
        subject="Moskva",
        relation="landmark_in_country",
        kg=(_russia(question),),
        memory=memory,
        rag=ModelView("p", "俄罗斯", 0.95, 0.5),
        rag_supported=True,
    )
    d = decide(s, T)
    assert (d.action, d.text) == ("retrieval", "俄罗斯")
    assert "no Chinese name" in d.reason
    assert not T.settled_by_kg(s)  # the RAG answer must be measured for it


@pytest.mark.parametrize(
    ("rag", "supported", "top"),
    [
        (None, False, 0.0),  # memory has nothing
        (ModelView("p", "俄罗斯", 0.95, 0.5), False, 0.9),  # an unsupported RAG answer
        (ModelView("p", "俄罗斯", 0.1, 0.05), True, 0.9),  # a timid one
        (ModelView("p", "Russia", 0.95, 0.5), True, 0.9),  # one in English: the KG's fact is as good
        (ModelView("p", "俄罗斯", 0.95, 0.5), True, 0.2),  # memory's best passage below the threshold
    ],
)
def test_without_a_chinese_answer_from_memory_the_kg_label_answers(
    rag: ModelView | None, supported: bool, top: float
) -> None:
    question = "Moskva在哪个国家？"
    memory = (Evidence("Moskva位于俄罗斯。", top, "memory", Citation(item_id="m1")),) if top else ()
    s = Signals(
        question,
        relation="landmark_in_country",
        kg=(_russia(question),),
        memory=memory,
        rag=rag,
        rag_supported=supported,
    )
    assert (decide(s, T).action, decide(s, T).text) == ("kg", "Russia")


def test_an_english_question_with_a_kg_fact_is_settled_by_it_whatever_memory_says() -> None:
    question = "Which country is Moskva located in?"
    memory = (Evidence("Moskva is in Ukraine.", 0.9, "memory", Citation(item_id="m1")),)
    s = Signals(
        question,
        relation="landmark_in_country",
        kg=(_russia(question),),
        memory=memory,
        rag=ModelView("p", "Ukraine", 0.95, 0.5),
        rag_supported=True,
    )
    assert T.settled_by_kg(s)
    assert (decide(s, T).action, decide(s, T).text) == ("kg", "Russia")


def test_a_chinese_country_name_links_to_the_entity_and_stays_the_subject(graph: KnowledgeGraph) -> None:
    entities, relations = _linkers(graph)
    linker = QuestionLinker(entities, relations, graph.schema.zh_templates())
    link = linker.link("法国的首都是哪里？")
    assert link is not None and (link.subject, link.relation) == ("法国", "capital")
    graph.add(Triple("France", "capital", "Paris"), Provenance(who="world", source="cap"))
    graph.entity("Paris", labels={"zh": "巴黎"})
    [fact] = _retriever(graph).kg_evidence("法国的首都是哪里？")
    assert (fact.citation.triple.object if fact.citation.triple else None, fact.object_label) == ("Paris", "巴黎")
    english = QuestionLinker(entities, relations, graph.schema.templates()).link("What is the capital of France?")
    assert english is not None and english.subject == "France"


def test_a_subject_written_in_chinese_gets_no_english_paraphrases(graph: KnowledgeGraph) -> None:
    entities, relations = _linkers(graph)
    lm = SimpleNamespace(prompt_format=PromptFormat())
    collector = SignalCollector(_retriever(graph), entities, relations, graph.schema.templates(), cast(Any, lm))
    assert collector.paraphrase_prompts(QuestionLink("法国", "capital", 0.95, "{}的首都是哪里？")) == []
    english = collector.paraphrase_prompts(QuestionLink("France", "capital", 1.0, "What is the capital of {}?"))
    assert len(english) == 2 and all("France" in p for p in english)
