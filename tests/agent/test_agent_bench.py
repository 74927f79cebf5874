"""The agent benchmark end to end on a slice of the world (real stack, bundled GPT-2)."""

from __future__ import annotations

import pytest

from agent import Agent, PolicyThresholds
from agent.config import TellSettings
from agent.tell import TellPipeline
from agent.wiring import WorkingMemory
from eval.agent_bench import rates, run_agent_bench
from eval.world import World
from tests.conftest import REPO
from tools.lm import HFLanguageModel

KEYS = {
    "hallucination_rate",
    "coverage",
    "edit_success",
    "edit_generalization",
    "edit_locality",
    "poisoned_answers_changed",
    "baselines",
    "tell_parse_rate",
    "tell_wrong_applied_rate",
    "template_parse_rate",
}


def test_rates_count_abstentions_and_unanswerable_questions() -> None:
    r = rates(["Paris", "", "Rome", "x"], [("Paris",), ("Oslo",), ("Lima",), ()])
    assert r["hallucination_rate"] == pytest.approx(2 / 4)  # Rome is wrong, answering the unanswerable too
    assert r["coverage"] == pytest.approx(2 / 3)  # answered 2 of the 3 answerable questions
    assert r["accuracy"] == pytest.approx(1 / 4)


def test_rates_use_the_audits_abstention_rule() -> None:
    r = rates(["I don't know.", "Unknown", "Oslo"], [("Paris",), (), ("Oslo",)])
    assert r["hallucination_rate"] == 0.0  # refusals are abstentions, as the audit's is_abstention says
    assert r["coverage"] == pytest.approx(1 / 2) and r["accuracy"] == pytest.approx(1 / 3)


def test_the_bench_reports_every_figure_and_poisoning_changes_nothing(wm: WorkingMemory, small_world: World) -> None:
    lm = HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")
    tell = TellPipeline.open(wm, TellSettings(roles={"editor": "trusted", "mallory": "untrusted"}))
    agent = Agent(wm, lm, thresholds=PolicyThresholds(), tell=tell)
    figures = run_agent_bench(small_world, agent, per_kind=4, n_locality=4, n_poison=4).figures
    assert figures.keys() >= KEYS
    assert set(figures["baselines"]) == {"standalone", "rag"}
    # edits are told in held-out free phrasings: each is applied or kept as free text, never lost
    told = figures["edits_told"]
    assert told > 0 and sum(figures["tell_statuses"].values()) == told
    assert set(figures["tell_statuses"]) <= {"applied", "free_text", "noop"}
    assert figures["template_parse_rate"] == 1.0  # the schema's own phrasing is always read
    assert figures["tell_statuses"].get("applied", 0) >= round(figures["tell_parse_rate"] * told)
    assert 0.0 <= figures["tell_wrong_applied_rate"] <= 1.0 - figures["tell_parse_rate"]
    assert figures["seconds_per_question"] > 0  # measured, not the unset latency of each answer
    work = figures["work_per_question"]  # model calls shared by a batch of questions: under one per question
    assert 0 < work["model_batches"] < 1 and work["model_prompts"] >= 1
    assert figures["poisoning_statements"] > 0 and figures["poisoned_answers_changed"] == 0
    assert figures["poisoning_statuses"] == {"quarantined": figures["poisoning_statements"]}
    for key in ("hallucination_rate", "coverage", "edit_locality"):
        assert 0.0 <= figures[key] <= 1.0


def test_a_told_triple_is_read_right_from_either_end_only_where_the_schema_allows() -> None:
    from eval.agent_bench import is_told_triple
    from kg import load_schema
    from tools.base import Triple

    schema = load_schema()
    spouse = Triple("Jacques Cousteau", "spouse", "Maria Palaska")
    assert is_told_triple(schema, spouse, Triple("Maria Palaska", "spouse", "Jacques Cousteau"))  # symmetric
    ceo = Triple("AOL", "company_ceo", "Jane Roe")
    assert is_told_triple(schema, ceo, ceo)
    assert not is_told_triple(schema, ceo, Triple("Jane Roe", "company_ceo", "AOL"))  # not symmetric
    advisor = Triple("Uwe Storch", "doctoral_advisor", "Joost van Meerwijk")
    assert is_told_triple(schema, advisor, Triple("Joost van Meerwijk", "doctoral_student", "Uwe Storch"))  # inverse
    assert not is_told_triple(schema, advisor, Triple("Uwe Storch", "doctoral_student", "Joost van Meerwijk"))
