"""``Agent.ask`` end to end on the real stack: KG facts, told edits and rollback, abstention, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from agent import Agent
from eval.world import World
from tests.agent.tell.conftest import unknown_fact
from tools.errors import InvalidInputError


def _question(world: World, relation: str, subject: str) -> str:
    return world.relation(relation).questions[0].replace("{}", subject)


def test_a_fact_in_the_kg_is_answered_from_it_with_citations(agent: Agent, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_hq")
    answer = agent.ask(_question(small_world, "company_hq", fact.subject))
    assert (answer.action, answer.text) == ("kg", fact.object)
    assert answer.citations and answer.citations[0].citation.assertion_id
    assert answer.signals is not None and answer.signals.subject == fact.subject
    assert answer.latency_s > 0


def test_a_told_edit_changes_the_answer_and_rollback_restores_it(agent: Agent, small_world: World) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    question = _question(small_world, "company_ceo", fact.subject)
    result = agent.tell(f"The CEO of {fact.subject} is Jane Roe.", user="tess")
    assert result.status == "applied" and result.edit_id
    after = agent.ask(question)
    assert (after.action, after.text) == ("kg", "Jane Roe")
    assert result.edit_id in after.edit_ids
    assert any(r.edit_id == result.edit_id for r in agent.history(fact.subject))
    agent.rollback(result.edit_id, user="tess")
    assert agent.ask(question).text == fact.object


def test_a_question_about_nothing_known_is_not_answered(agent: Agent) -> None:
    answer = agent.ask("Who is the mother of Vuxvol Bredioskren?")
    assert answer.action == "abstain" and answer.text == "" and answer.reason


@pytest.mark.parametrize("bad", ["", "   ", "x" * 5000, None])
def test_bad_questions_are_rejected(agent: Agent, bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        agent.ask(bad)


def test_ask_many_batches_and_keeps_order(agent: Agent, small_world: World) -> None:
    facts = [unknown_fact(small_world, r) for r in ("company_hq", "company_ceo")]
    answers = agent.ask_many([_question(small_world, f.relation, f.subject) for f in facts])
    assert [a.text for a in answers] == [f.object for f in facts]


def test_scopes_replace_the_namespace_searched(agent: Agent, small_world: World) -> None:
    from memory import Scope

    fact = unknown_fact(small_world, "company_ceo")
    question = _question(small_world, "company_ceo", fact.subject)
    told = agent.tell(f"The CEO of {fact.subject} is Jane Roe.", user="tess", namespace="alice")
    assert told.status == "applied"
    assert agent.ask(question, scopes=[Scope(agent_id="alice")]).text == "Jane Roe"
    assert agent.ask(question, "alice", scopes=[Scope(agent_id="bob")]).text != "Jane Roe"


def test_a_shared_agent_batches_threads_under_its_guards(agent: Agent) -> None:
    """``Agent.share``: concurrent asks form micro-batches, read under ``reading`` and answer under
    ``answering`` (never both at once), and give what an unshared ask gives."""
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager

    from tools.errors import ServiceClosedError

    questions = ["Who is the CEO of Qantas?", "Who is the mother of Isaac Newton?", "Where is Acme Corp based?"]
    alone = [agent.ask(q) for q in questions]
    held: list[str] = []

    class Guards:
        @contextmanager
        def reading(self) -> Iterator[None]:
            held.append("read")
            yield
            held.append("/read")

        @contextmanager
        def answering(self) -> Iterator[None]:
            held.append("model")
            yield
            held.append("/model")

    agent.share(Guards(), max_batch=8, max_wait_s=0.5)  # a long wait: the three threads form one batch
    before = agent.work()
    got: dict[int, Any] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, agent.ask(questions[i]))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    work = agent.work() - before
    agent.stop_sharing()
    assert [got[i].text for i in range(3)] == [a.text for a in alone]
    assert [got[i].action for i in range(3)] == [a.action for a in alone]
    assert work.asks == 3 and work.batches == 1
    assert held == ["read", "/read", "model", "/model"]
    with pytest.raises(ServiceClosedError):
        agent.ask(questions[0])


def test_a_question_that_opens_with_its_subject_scores_familiarity_after_the_prompt_opening(
    agent: Agent, small_world: World
) -> None:
    """ "<subject> ... ?" has no words before the name: its familiarity is scored after the prompt's opening
    ("Q:"), not after an empty prompt (which crashed the lean scorer with a raw RuntimeError)."""
    fact = next(f for f in small_world.facts if f.relation == "company_hq" and f.split == "known")
    answer = agent.ask(f"{fact.subject} has its headquarters in which city?")
    assert answer.signals is not None and answer.signals.subject == fact.subject
    assert answer.signals.familiarity is not None and answer.signals.familiarity < 0  # a real mean log-probability
