"""KnowEdit metrics on hand-made inputs: n-gram entropy, token accuracy with a stub prober, locality, matching."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from eval.editing._metrics import (
    MODES,
    AfterEdit,
    BeforeEdit,
    LMProber,
    Mode,
    PromptOutcome,
    TargetPrediction,
    aggregate,
    agreement,
    answer_matches,
    fluency,
    measure_after,
    measure_before,
    ngram_entropy,
    old_answer,
    score_case,
    text_entropy,
)
from tests.conftest import REPO
from tools.edit import EditRequest
from tools.errors import InvalidInputError


@dataclass(frozen=True)
class Case:
    id: str
    request: EditRequest
    paraphrases: tuple[str, ...]
    locality: tuple[tuple[str, str], ...]
    portability: tuple[tuple[str, str, str], ...] = ()


class StubProber:
    """A "model" whose belief after each prompt is a string; one character is one token.

    Teacher forcing: the argmax at answer position ``i`` is the belief's character ``i`` (whatever the gold prefix),
    so token accuracy is the share of positions where belief and answer agree. Greedy answer: belief + ".".
    """

    def __init__(self, beliefs: dict[str, str]) -> None:
        self.beliefs = beliefs

    def targets(self, prompts: Sequence[str], answers: Sequence[str]) -> list[TargetPrediction]:
        out = []
        for prompt, answer in zip(prompts, answers, strict=True):
            belief = self.beliefs[prompt]
            predicted = tuple(ord(belief[i]) if i < len(belief) else -1 for i in range(len(answer)))
            out.append(TargetPrediction(tuple(ord(c) for c in answer), predicted))
        return out

    def answers(self, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        return [self.beliefs[p] + "." for p in prompts]

    def free_text(self, prompts: Sequence[str]) -> list[str]:
        return [p + " " + self.beliefs[p] for p in prompts]


CASE = Case(
    id="c1",
    request=EditRequest("P Sub", "Sub", "Bob", target_old="Ann"),
    paraphrases=("Q1", "Q2", "Q3"),
    locality=(("L1", "Xa"), ("L2", "Yb")),
    portability=(("R1", "Zed", "reverse"), ("M1", "Ann2", "multi_hop")),
)
BEFORE = {"P Sub": "Ann", "Q1": "Ann", "Q2": "Ann", "Q3": "Zzz", "L1": "Xa", "L2": "Yq"}
AFTER = {"P Sub": "Bob", "Q1": "Bob", "Q2": "Bon", "Q3": "Bob", "L1": "Xa", "L2": "Yz", "R1": "Zed", "M1": "Nope"}


def _scores(mode: Mode, case: Case = CASE) -> dict[str, Any]:
    before = measure_before(StubProber(BEFORE), [case])[0]
    after = measure_after(StubProber(AFTER), [case])[0]
    return aggregate([score_case(case, before, after, mode)])


def test_teacher_forced_metrics() -> None:
    s = _scores("teacher_forced")
    assert s["reliability"] == 1.0
    # Q3 is not understood before the edit (Zzz != Ann): generalization counts Q1 (3/3) and Q2 (2/3 tokens)
    assert s["generalization"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["generalization_all"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    # L1 unchanged; L2: argmax "Yq" -> "Yz" agrees on 1 of 2 positions
    assert s["locality"] == pytest.approx((1 + 0.5) / 2)
    # against the truth "Yb": post-edit "Yz" gets 1 of 2 tokens
    assert s["locality_vs_truth"] == pytest.approx((1 + 0.5) / 2)
    assert s["portability"] == pytest.approx(0.5)
    assert s["portability_by_kind"] == {"multi_hop": 0.0, "reverse": 1.0}
    assert s["generalization_cases"] == 1


def test_generation_metrics() -> None:
    s = _scores("generation")
    assert s["reliability"] == 1.0
    assert s["generalization"] == pytest.approx(0.5)  # "Bob." yes, "Bon." no
    assert s["generalization_all"] == pytest.approx(2 / 3)
    assert s["locality"] == pytest.approx(0.5)  # "Yq." -> "Yz." changed
    assert s["locality_vs_truth"] == pytest.approx(0.5)
    assert s["portability"] == pytest.approx(0.5)


def test_no_understood_paraphrase_leaves_generalization_out() -> None:
    case = Case("c2", CASE.request, ("Q3",), ())
    s = _scores("generation", case)
    assert s["generalization"] is None
    assert s["generalization_all"] == 1.0
    assert s["locality"] is None and s["portability"] is None
    assert s["generalization_cases"] == 0


def test_case_without_old_object_counts_all_paraphrases() -> None:
    case = Case("c3", EditRequest("P Sub", "Sub", "Bob"), ("Q1", "Q2", "Q3"), ())
    assert old_answer(case) is None
    s = _scores("generation", case)
    assert s["generalization"] == s["generalization_all"] == pytest.approx(2 / 3)


def test_aggregate_is_a_macro_average_skipping_none() -> None:
    before = measure_before(StubProber(BEFORE), [CASE])[0]
    after = measure_after(StubProber(AFTER), [CASE])[0]
    full = score_case(CASE, before, after, "generation")
    empty = score_case(Case("c2", CASE.request, ("Q3",), ()), *_probes_for(("Q3",)), "generation")
    agg = aggregate([full, empty])
    assert agg["reliability"] == 1.0
    assert agg["generalization"] == pytest.approx(0.5)  # only the first case has one
    assert agg["locality"] == pytest.approx(0.5)
    assert agg["generalization_all"] == pytest.approx((2 / 3 + 1) / 2)


def _probes_for(paraphrases: tuple[str, ...]) -> tuple[BeforeEdit, AfterEdit]:
    case = Case("c", CASE.request, paraphrases, ())
    return measure_before(StubProber(BEFORE), [case])[0], measure_after(StubProber(AFTER), [case])[0]


def test_locality_agreement_definitions() -> None:
    pre = PromptOutcome("Paris.", TargetPrediction((1, 2, 3), (1, 2, 9)))
    post = PromptOutcome("paris", TargetPrediction((1, 2, 3), (1, 5, 9)))
    assert agreement(pre, post, "teacher_forced") == pytest.approx(2 / 3)  # positions 0 and 2 unchanged
    assert agreement(pre, post, "generation") == 1.0  # same after normalisation
    assert agreement(pre, PromptOutcome("Lyon.", post.target), "generation") == 0.0
    assert MODES == ("teacher_forced", "generation")


def test_token_accuracy() -> None:
    assert TargetPrediction((1, 2, 3, 4), (1, 0, 3, 0)).accuracy == 0.5
    assert TargetPrediction((), ()).accuracy == 0.0


@pytest.mark.parametrize(
    ("generated", "target", "expected"),
    [
        ("Daniel Zhang.", "Daniel Zhang", True),
        ("daniel zhang", "Daniel Zhang.", True),
        ("Paris, France.", "Paris", True),
        ("Parisian.", "Paris", False),
        ("The Beatles.", "Beatles", True),
        ("Zhang Daniel", "Daniel Zhang", False),
        ("", "Paris", False),
        ("anything", "...", False),  # a target that normalises to nothing never matches
    ],
)
def test_answer_matches(generated: str, target: str, expected: bool) -> None:
    assert answer_matches(generated, target) is expected


def test_entropy_of_known_strings() -> None:
    # bigrams (a,b) x2, (b,a) x1 -> H2 = H(2/3, 1/3); trigrams (a,b,a), (b,a,b) -> H3 = 1 bit
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert ngram_entropy(["a", "b", "a", "b"], 2) == pytest.approx(h2)
    assert ngram_entropy(["a", "b", "a", "b"], 3) == pytest.approx(1.0)
    assert text_entropy("a b a b") == pytest.approx((2 / 3 * h2 + 4 / 3 * 1.0) / 2)
    assert text_entropy("the the the the the") == 0.0  # one repeated n-gram: no entropy
    assert ngram_entropy(["a", "b"], 3) == 0.0
    # punctuation marks are tokens: "x . x ." has bigrams (x,.) x2, (.,x) x1 like "a b a b"
    assert text_entropy("x. x.") == pytest.approx(text_entropy("a b a b"))
    assert fluency(["a b a b", "the the the the the"]) == pytest.approx(text_entropy("a b a b") / 2)
    assert fluency([]) is None


def test_lm_prober_matches_greedy_answers_on_the_reference_model() -> None:
    from tools.lm._hf import HFLanguageModel

    lm = HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")
    prober = LMProber(lm, fluency_tokens=8)
    prompts = ["Alibaba's CEO is", "Q: Who is the CEO of Alibaba?\nA:", "Alibaba's CEO is"]
    targets = prober.targets(prompts, ["Daniel Zhang", "Daniel Zhang", "Takahiro Hachigō"])
    answers = prober.answers(prompts)
    assert answer_matches(answers[0], "Daniel Zhang")
    assert targets[0].accuracy == 1.0  # greedy says it, so every target token is the argmax
    assert lm.tokenizer.decode(list(targets[0].gold)) == " Daniel Zhang"
    assert targets[2].accuracy < 1.0
    for target, answer in zip(targets, answers, strict=True):  # teacher-forced 1.0 <=> greedy starts with it
        tokens = lm.tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        assert (target.accuracy == 1.0) == (tuple(tokens[: len(target.gold)]) == target.gold)
    texts = prober.free_text(prompts[:1])
    assert texts[0].startswith("Alibaba's CEO is") and len(texts[0]) > len(prompts[0])
    with pytest.raises(InvalidInputError):
        prober.targets(["x"], [" "])
