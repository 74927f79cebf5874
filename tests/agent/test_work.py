"""One embedding per question (reused across scopes, linking and the guard) and the work counters."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from agent import Agent, PolicyThresholds, WorkCounts
from agent.config import open_home
from agent.wiring import load_request_guard, open_working_memory
from memory import MemoEmbedder, Scope
from tools.lm import HFLanguageModel


def test_a_question_is_embedded_once_across_scopes_and_the_guard(
    tmp_path: Path, loaded_home: Path, minilm: Any, gpt2: HFLanguageModel
) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    memo = MemoEmbedder(minilm)
    with open_working_memory(open_home(home), embedder=memo) as wm:
        wm.refresh_entities()
        wm.memory.add("Alice keeps a note about Qantas.", scope=Scope(agent_id="alice"))
        agent = Agent(wm, gpt2, thresholds=PolicyThresholds(), guard=load_request_guard(memo), embedder=memo)
        questions = ["Who is the CEO of Qantas?", "Who is the mother of Isaac Newton?"]
        agent.ask("Who founded the Qantas airline?", namespace="alice")  # first-use work (template matrix)
        before, seen = agent.work(), memo.counts()
        answers = agent.ask_many(questions, namespace="alice")  # scopes alice + world, then the guard
        work = agent.work() - before
    assert len(answers) == 2
    assert work.asks == 2 and work.batches == 1
    assert work.embed_texts == 2 and work.embed_batches == 1  # both questions in one call, nothing else
    assert memo.counts().reused - seen.reused >= 2 * 3  # two scopes and the guard reused each question
    assert 1 <= work.model_batches <= 2  # one generate, one score call for the whole batch
    # rows the model ran: each answer's prompts, a prompt two questions share (the "N/A" prior) run once
    assert 0 < work.model_prompts <= sum(a.model_calls for a in answers)
    assert work.per_ask()["model_batches"] == work.model_batches / 2


def test_linking_texts_are_embedded_with_the_question_in_one_call(
    tmp_path: Path, loaded_home: Path, minilm: Any, gpt2: HFLanguageModel
) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded_home, home)
    memo = MemoEmbedder(minilm)
    # relations linked by embedding ("who runs x" matches no template word for word) and one exactly
    questions = ["Who runs Nokia?", "Where is the headquarters of Siemens?", "Who is the CEO of Qantas?"]
    with open_working_memory(open_home(home), embedder=memo) as wm:
        wm.refresh_entities()
        plain = Agent(wm, gpt2, thresholds=PolicyThresholds())  # nothing warmed: linking embeds on its own
        alone = []
        for q in questions:
            memo.clear()
            alone.append(plain.ask(q, namespace="alice"))
        agent = Agent(wm, gpt2, thresholds=PolicyThresholds(), embedder=memo)
        agent.ask("Who founded the Qantas airline?", namespace="alice")  # first-use work (template matrix)
        got = []
        for q in questions:
            texts = agent.collector.linker.link_texts(q, ["alice", "world"])
            memo.clear()  # embedded afresh, as a new question would be
            before = agent.work()
            got.append(agent.ask(q, namespace="alice"))
            work = agent.work() - before
            assert work.embed_batches == 1 and work.embed_texts == 1 + len(texts), q  # one call per ask
    assert [len(agent.collector.linker.link_texts(q, ["world"])) for q in questions] == [1, 1, 0]
    for a, b in zip(alone, got, strict=True):
        assert (a.text, a.action, a.citations, a.model_calls) == (b.text, b.action, b.citations, b.model_calls)
        assert abs(a.confidence - b.confidence) <= 1e-4
        assert a.signals is not None and b.signals is not None
        assert (a.signals.subject, a.signals.relation) == (b.signals.subject, b.signals.relation)
        assert abs(a.signals.link_score - b.signals.link_score) <= 1e-5


def test_counts_subtract_and_divide() -> None:
    a = WorkCounts(asks=4, batches=2, model_batches=6, model_prompts=30, embed_batches=2, embed_texts=4)
    assert (a - WorkCounts(asks=1, model_prompts=10)).model_prompts == 20
    assert a.per_ask() == {
        "batches": 0.5,
        "model_batches": 1.5,
        "model_prompts": 7.5,
        "embed_batches": 0.5,
        "embed_texts": 1.0,
    }
