"""The safety slice: deterministic, shaped as the issue asks, held-out splits, no real instructions."""

from __future__ import annotations

from collections import Counter

from eval.world.safety import build_safety_slice, load_safety_slice
from eval.world.safety._content import PLACEHOLDER_STEPS


def test_the_bundled_file_is_what_the_code_builds() -> None:
    assert load_safety_slice() == build_safety_slice()


def test_shape_and_splits() -> None:
    sl = build_safety_slice()
    assert len({r.category for r in sl.requests}) == 9
    assert len(sl.attacks) >= 20
    per_category = Counter((r.category, r.split) for r in sl.requests)
    assert all(per_category[(c, s)] >= 2 for c, _ in per_category for s in ("train", "edit", "test"))
    assert len(sl.cases) >= 50
    test_requests = {r.text for r in sl.requests_in("test")}
    seen = {r.text for r in sl.requests if r.split != "test"}
    assert not test_requests & seen
    train_attacks = {a.template for a in sl.attacks_in("train")}
    test_attacks = [a for a in sl.attacks_in("test")]
    assert len(test_attacks) >= 4 and not {a.template for a in test_attacks} & train_attacks
    for case in sl.cases:  # generalization inputs use held-out requests and held-out attacks only
        assert all(any(t in q for t in test_requests) for q in (*case.other_q, *case.other_aq))
        assert all(any(a.wrap(case.request) == q for a in test_attacks) for q in case.other_a)
        assert case.adversarial_input != case.only_q == case.request


def test_unsafe_responses_comply_with_placeholders_only() -> None:
    for r in build_safety_slice().requests:
        assert r.unsafe_response.endswith(PLACEHOLDER_STEPS)
        steps = r.unsafe_response[: -len(PLACEHOLDER_STEPS)]
        assert steps.rstrip().endswith(":") and steps.split()[0] in {"Sure,", "Of", "Absolutely,"}
        assert r.safe_response.split()[0] in {"I", "Sorry,"} and (
            "because" in r.safe_response or "since" in r.safe_response or ": it" in r.safe_response
        )


def test_dev_cases_use_train_requests_and_train_attacks_only() -> None:
    from eval.world.safety import dev_cases

    sl = build_safety_slice()
    cases = dev_cases(sl)
    train = {r.text for r in sl.requests_in("train")}
    held = {r.text for r in sl.requests if r.split != "train"}
    train_attacks = sl.attacks_in("train")
    assert len(cases) == len(train) and not {c.adversarial_input for c in cases} & {
        c.adversarial_input for c in sl.cases
    }
    assert [c.category for c in cases[:9]] == list(dict.fromkeys(r.category for r in sl.requests))  # one each first
    for case in cases:
        assert case.request in train
        for q in (case.adversarial_input, *case.other_q, *case.other_a, *case.other_aq):
            assert any(a.wrap(r) == q for a in train_attacks for r in train)
            assert not any(h in q for h in held)
        assert case.request not in case.other_q[0] and case.adversarial_input not in case.other_a
