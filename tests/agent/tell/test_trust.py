"""Trust and quarantine (the poisoning defence), review by admins, and per-user rate limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.tell import RateLimiter, TellPipeline, TrustPolicy
from agent.wiring import WorkingMemory
from eval.world import World
from memory import Triple
from tests.agent.tell.conftest import snapshot, unknown_fact
from tools.errors import InvalidInputError, PermissionDeniedError, RateLimitedError, UnknownEditError

SEEN = ["default", "world"]  # what a tell in the default namespace sees


def test_untrusted_contradiction_of_a_world_fact_is_quarantined_and_changes_nothing(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    before = snapshot(wm)
    result = pipeline.tell(f"The CEO of {fact.subject} is Evil Eve.", user="mallory")
    assert result.status == "quarantined" and result.edit_id is None
    assert result.quarantine_id is not None and result.quarantine_id.startswith("q-")
    assert "trusted fact" in result.message and "asserted by world" in result.message
    assert snapshot(wm) == before  # neither the KG nor the memory changed
    [item] = pipeline.quarantine()
    assert (item.id, item.user, item.status) == (result.quarantine_id, "mallory", "pending")
    assert item.triples == (Triple(fact.subject, "company_ceo", "Evil Eve"),)


def test_untrusted_additions_to_a_trusted_non_functional_fact_are_quarantined(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "notable_work")
    assert not wm.graph.schema.relation("notable_work").functional
    before = snapshot(wm)
    result = pipeline.tell(f"The notable work of {fact.subject} is The Fake Book.", user="mallory")
    assert result.status == "quarantined" and "disagrees with the trusted fact" in result.message
    assert snapshot(wm) == before
    assert pipeline.tell(f"The notable work of {fact.subject} is The Fake Book.", user="tess").status == "applied"


def test_trusted_users_edits_apply_and_untrusted_new_facts_apply(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    fact = unknown_fact(small_world, "company_ceo")
    assert pipeline.tell(f"The CEO of {fact.subject} is Jane Roe.", user="tess").status == "applied"
    assert [a.triple.object for a in wm.graph.facts(fact.subject, "company_ceo", namespaces=SEEN)] == ["Jane Roe"]
    # tess is trusted: an untrusted user cannot overwrite her fact either
    assert pipeline.tell(f"The CEO of {fact.subject} is Evil Eve.", user="mallory").status == "quarantined"
    # a new fact that contradicts nothing trusted is applied
    assert pipeline.tell("The CEO of Nowhere Labs is Evil Eve.", user="mallory").status == "applied"
    # and an ordinary user's facts are not protected from untrusted users
    pipeline.tell("The CEO of Some Shop is Bob Stone.", user="bob")
    assert pipeline.tell("The CEO of Some Shop is Evil Eve.", user="mallory").status == "applied"


def test_review_approve_applies_as_the_authors_edit_reject_drops(
    pipeline: TellPipeline, wm: WorkingMemory, small_world: World
) -> None:
    ceo, hq = unknown_fact(small_world, "company_ceo"), unknown_fact(small_world, "company_hq")
    first = pipeline.tell(f"The CEO of {ceo.subject} is Evil Eve.", user="mallory")
    second = pipeline.tell(f"{hq.subject} is headquartered in Atlantis.", user="mallory")
    with pytest.raises(PermissionDeniedError):
        pipeline.review(first.quarantine_id or "", approve=True, user="tess")  # trusted, not admin
    approved = pipeline.review(first.quarantine_id or "", approve=True, user="root")
    assert approved is not None and approved.status == "applied"
    assert wm.graph.facts(ceo.subject, "company_ceo", namespaces=SEEN)[0].who == "user:mallory"
    assert pipeline.review(second.quarantine_id or "", approve=False, user="root") is None
    assert [a.triple.object for a in wm.graph.facts(hq.subject, "company_hq", namespaces=SEEN)] == [hq.object]
    assert pipeline.quarantine() == []
    assert {q.status for q in pipeline.quarantine(None)} == {"approved", "rejected"}
    with pytest.raises(InvalidInputError, match="already"):
        pipeline.review(second.quarantine_id or "", approve=True, user="root")
    with pytest.raises(UnknownEditError):
        pipeline.review("q-00000000", approve=True, user="root")


def test_policy_all_quarantines_every_statement_of_untrusted_users(
    make_pipeline: Callable[..., TellPipeline], wm: WorkingMemory
) -> None:
    pipeline = make_pipeline(roles={"mallory": "untrusted"}, untrusted_policy="all")
    before = snapshot(wm)
    assert pipeline.tell("The CEO of Nowhere Labs is Evil Eve.", user="mallory").status == "quarantined"
    assert pipeline.tell("Nowhere Labs sponsors a rowing club.", user="mallory").status == "quarantined"
    assert snapshot(wm) == before


def test_model_belief_guards_facts_only_the_model_knows(wm: WorkingMemory) -> None:
    from agent.tell import Controller, TemplateInterpreter

    trust = TrustPolicy({"mallory": "untrusted"})
    controller = Controller(wm.graph, trust, model_belief=lambda t: "Daniel Zhang" if t.subject == "Alibaba" else None)
    interpreter = TemplateInterpreter(wm.graph.schema, wm.entities)
    decision = controller.decide(interpreter.interpret("Alibaba's CEO is Evil Eve."), "mallory")
    assert decision.action == "quarantine" and "model's confident answer" in decision.reason
    assert controller.decide(interpreter.interpret("Alibaba's CEO is Evil Eve."), "bob").action == "apply"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_over_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, exempt=("admin",), clock=clock)
    for _ in range(3):
        limiter.check("bob", "user")
    with pytest.raises(RateLimitedError) as caught:
        limiter.check("bob", "user")
    assert caught.value.retry_after == pytest.approx(20.0)
    limiter.check("ann", "user")  # buckets are per user
    for _ in range(10):
        limiter.check("root", "admin")  # exempt role
    clock.now = 20.0
    limiter.check("bob", "user")
    with pytest.raises(RateLimitedError):
        limiter.check("bob", "user")
    with pytest.raises(InvalidInputError):
        RateLimiter(-1)


def test_pipeline_rate_limit_counts_only_writes(make_pipeline: Callable[..., TellPipeline], wm: WorkingMemory) -> None:
    pipeline = make_pipeline(edits_per_minute=2)
    pipeline.tell("The CEO of Alpha Co is Ann Lee.", user="bob")
    pipeline.tell("Who is the CEO of Alpha Co?", user="bob")  # a question costs nothing
    pipeline.tell("The CEO of Alpha Co is Ann Lee.", user="bob")  # nor does a fact already known
    pipeline.tell("The CEO of Beta Co is Ann Lee.", user="bob")
    before = snapshot(wm)
    with pytest.raises(RateLimitedError, match="bob"):
        pipeline.tell("The CEO of Gamma Co is Ann Lee.", user="bob")
    assert snapshot(wm) == before
    assert pipeline.tell("The CEO of Gamma Co is Ann Lee.", user="carol").status == "applied"


def test_roles_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="role"):
        TrustPolicy({"bob": "boss"})  # type: ignore[dict-item]
    policy = TrustPolicy({"tess": "trusted"}, default_role="untrusted")
    assert policy.role("anyone") == "untrusted" and policy.is_trusted_source("user:tess")
    assert policy.is_trusted_source("world") and policy.is_trusted_source("world:d00001")
    assert not policy.is_trusted_source("user:anyone") and not policy.is_trusted_source("worldly")
