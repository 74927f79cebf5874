"""Circuit cases from the world (same-relation corrupted twin) and the per-relation benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.circuits import CircuitCache, circuit_bench, fact_case, find_fact, relation_facts
from tools.errors import InvalidInputError


@pytest.fixture(scope="module")
def lm() -> Any:
    from eval.world._pipeline import MODEL_NAMES, MODELS_DIR
    from tools.lm import HFLanguageModel

    return HFLanguageModel.load(MODELS_DIR / MODEL_NAMES["gpt2"], device="cpu")


def test_corrupted_twin_is_another_known_subject_of_the_relation(bundled_world: Any, lm: Any) -> None:
    tok = lm.tokenizer
    fact = find_fact(bundled_world, "company_ceo", "AMD")
    case = fact_case(bundled_world, fact, tok)
    twin = find_fact(bundled_world, "company_ceo", case.corrupt_subject)
    assert twin.split == "known" and twin.subject != "AMD" and case.corrupt_answer == twin.object
    assert len(tok(case.prompt)["input_ids"]) == len(tok(case.corrupt_prompt)["input_ids"])
    assert case == fact_case(bundled_world, fact, tok)  # deterministic for a seed
    assert case.reference_prompts and case.prompt not in case.reference_prompts
    assert case.corrupt_prompt not in case.reference_prompts
    assert {len(tok(r)["input_ids"]) for r in case.reference_prompts} == {len(tok(case.prompt)["input_ids"])}


def test_unknown_subject_and_relation(bundled_world: Any) -> None:
    with pytest.raises(InvalidInputError, match="unknown relation"):
        find_fact(bundled_world, "no_such_relation", "AMD")
    with pytest.raises(InvalidInputError, match="unknown subject"):
        find_fact(bundled_world, "company_ceo", "Nobody Inc")
    with pytest.raises(InvalidInputError, match="unknown relation"):
        relation_facts(bundled_world, "no_such_relation")


def test_bench_row_has_the_issue_fields(bundled_world: Any, lm: Any, tmp_path: Path) -> None:
    from tools.circuits import CircuitFinder

    finder = CircuitFinder(lm.model, lm.tokenizer, steps=3, mean_ablation=True)
    cache = CircuitCache(tmp_path, "gpt2-world", finder, seed=0)
    kwargs: dict[str, Any] = {"n_per_relation": 2, "relations": ["company_ceo", "spouse"], "cache": cache}
    row, per = circuit_bench(finder, bundled_world, "gpt2-world", **kwargs)
    assert {"model", "n_facts", "share_faithful_at_10pct", "median_seconds_per_fact"} <= set(row)
    assert row["n_facts"] == 4 and [rc.relation for rc in per] == ["company_ceo", "spouse"]
    assert 0.0 <= row["share_faithful_at_10pct"] <= 1.0
    shares = [c.faithful_at(0.1, 0.7) for rc in per for c in rc.circuits]
    assert row["share_faithful_at_10pct"] == sum(shares) / 4
    assert sorted(per[0].mlp_ranking()) == [0, 1, 2, 3]
    split = row["correct_vs_hallucinated"]
    assert split["correct"]["n"] + split["hallucinated"]["n"] == 4
    # the embeddings differ only at the subject, which the logits port never reads: heads + MLPs carry it all
    assert split["correct"]["heads_into_logits"] + split["correct"]["mlps_into_logits"] == pytest.approx(1.0)
    assert len(split["correct"]["lens_gold_logprob_by_depth"]) == 5
    assert sum(split["correct"]["moved_until_depth"].values()) == split["correct"]["n"]
    assert 0.0 <= row["share_faithful_at_10pct_mean_ablation"] <= 1.0
    assert all(c.mean_curve and c.mean_curve[-1][2] == pytest.approx(1.0, abs=1e-4) for rc in per for c in rc.circuits)

    # a second run is served from the per-fact cache: no circuit is computed again
    def no_find(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("recomputed a cached circuit")

    finder.find = no_find  # type: ignore[method-assign]
    again, _ = circuit_bench(finder, bundled_world, "gpt2-world", **kwargs)
    assert again["share_faithful_at_10pct"] == row["share_faithful_at_10pct"] and again["n_facts"] == 4
