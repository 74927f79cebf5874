"""Claim support: splitting long answers into claims and checking them against the KG and the memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.audit import ClaimChecker, split_claims
from eval.world import World


def test_split_claims() -> None:
    text = "Lisa Su is the CEO of AMD; she studied at MIT. AMD is based in Santa Clara, and it makes chips. Yes."
    assert split_claims(text) == [
        "Lisa Su is the CEO of AMD",
        "she studied at MIT.",
        "AMD is based in Santa Clara",
        "it makes chips.",
    ]
    assert split_claims("") == [] and split_claims("Paris") == []
    # initials and abbreviations do not end a sentence
    assert split_claims("John D. Rocke Jr. runs The No. 1 Ladies' Detective Agency.") == [
        "John D. Rocke Jr. runs The No. 1 Ladies' Detective Agency."
    ]


@pytest.fixture(scope="module")
def checker(audit_home: Path) -> ClaimChecker:
    from agent.config import open_home
    from agent.wiring import open_working_memory

    wm = open_working_memory(open_home(audit_home))
    return ClaimChecker(wm.retriever)


def test_claims_against_the_world_memory(checker: ClaimChecker, bundled_world: World) -> None:
    first = bundled_world.facts_in("unknown")[0]  # in the memory slice (conftest)
    rel = bundled_world.relation(first.relation)
    true = rel.statements[0].format(first.subject, first.object)
    false = rel.statements[0].format(first.subject, "Zanzibar Quintessence")
    answer = f"{true} {false}"
    assert checker.is_long(answer) and not checker.is_long(first.object)
    assert not checker.is_long("John Christopher D. Rocke") and not checker.is_long("H. Lawrence Culp Jr.")
    support = checker.check(answer)
    assert support.claims == (true, false)
    assert support.supported == (True, False) and support.ratio == 0.5
    assert checker.check("Nothing at all is known about the moons of Vrundforgion.").supported == (False,)
