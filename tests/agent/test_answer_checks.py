"""Answers the policy does not give: about nothing it can check, the question's own subject, an out-of-date fact."""

from __future__ import annotations

from agent import ModelView, PolicyThresholds, Signals
from agent._policy import decide
from agent.retrieval import Citation, Evidence, HybridRetriever, Superseded
from kg import EntityLinker, KnowledgeGraph, MemoryTripleStore, Provenance, RelationLinker, load_schema
from memory import Triple

T = PolicyThresholds(kg_link=0.5, memory=0.5, rag_prob=0.3, require_support=True, model=0.6, familiarity=-4.0)


def _view(text: str, prob: float) -> ModelView:
    return ModelView("prompt", text, prob, prob / 2)


def _mem(text: str, score: float = 0.8) -> Evidence:
    return Evidence(text, score, "memory", Citation(item_id="m1"))


def test_the_model_does_not_answer_a_question_that_names_nothing() -> None:
    nothing = Signals("What is 2+2?", model=_view("Cassiopeia", 0.95))
    d = decide(nothing, T)
    assert d.action == "abstain" and "names nothing" in d.reason
    named = Signals("Who leads Acme?", subject="Acme", model=_view("Jane Roe", 0.95), familiarity=-0.1)
    assert decide(named, T).action == "parametric"
    chinese = Signals(
        "「紅豆生南國」的下一句是什么？", model=_view("春來發幾枝", 0.95)
    )  # its subject is the quoted span
    assert decide(chinese, T).action == "parametric"


def test_the_question_s_own_subject_is_not_its_answer() -> None:
    memory = (_mem("France is a country in Europe."),)
    s = Signals("What is the capital of France?", subject="France", memory=memory, rag=_view("France", 0.7),
                rag_supported=True)  # fmt: skip
    d = decide(s, T)
    assert d.action == "abstain" and "own subject" in d.reason
    model = Signals("What is the capital of France?", subject="France", model=_view("France.", 0.9), familiarity=-0.1)
    assert decide(model, T).action == "abstain"


def test_an_answer_a_newer_fact_replaced_is_not_given() -> None:
    old = Superseded(triple=Triple("AOL", "company_ceo", "Tim Armstrong"), current=("Jane Roe",), label="CEO")
    memory = (_mem("AOL is led by chief executive Tim Armstrong."),)
    stale = Signals("Tell me about AOL.", subject="AOL", memory=memory, rag=_view("Tim Armstrong", 0.7),
                    rag_supported=True, superseded=(old,))  # fmt: skip
    d = decide(stale, T)
    assert d.action == "abstain" and "out of date" in d.reason and "(AOL, CEO, Tim Armstrong)" in d.reason
    memory = (_mem("AOL is led by chief executive Jane Roe."),)
    fresh = Signals("Tell me about AOL.", subject="AOL", memory=memory, rag=_view("Jane Roe", 0.7),
                    rag_supported=True, superseded=(old,))  # fmt: skip
    assert decide(fresh, T).action == "retrieval"


def test_the_retriever_names_replaced_facts_as_the_reader_sees_them() -> None:
    schema = load_schema()
    kg = KnowledgeGraph(MemoryTripleStore(), schema)
    kg.add(Triple("AOL", "company_ceo", "Tim Armstrong"), Provenance("world", edit_id="e-00000001"))
    kg.add(Triple("AOL", "company_hq", "New York"), Provenance("world", edit_id="e-00000002"))
    retriever = HybridRetriever(None, kg, EntityLinker(list(kg.entities())), RelationLinker(schema.templates()))  # type: ignore[arg-type]
    assert retriever.superseded("Tell me about AOL.") == ()
    kg.add(Triple("AOL", "company_ceo", "Jane Roe"), Provenance("user:alice", edit_id="e-00000003"))
    (old,) = retriever.superseded("Tell me about AOL.")
    assert old.triple == Triple("AOL", "company_ceo", "Tim Armstrong") and old.current == ("Jane Roe",)
    assert old.label == "CEO"
