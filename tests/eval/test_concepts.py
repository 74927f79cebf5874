"""ConceptEdit: cases from the world and from ConceptEdit's JSON, the concept metrics, the bench on a tiny model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from eval.concepts import (
    ROW_KEYS,
    EmbeddingConsistency,
    LLMConsistencyJudge,
    editor_for,
    expected_members,
    instance_change,
    load_conceptedit,
    run_concept_bench,
    world_concept_cases,
    world_concept_edits,
    world_concept_rows,
    yes_no,
)
from eval.world._pipeline import DATA_DIR
from tests.memory.fakes import HashEmbedder
from tools.errors import InvalidInputError, WorldFormatError
from tools.lm import PromptFormat

# Our own rows in the shape of ConceptEdit's released files (final_<model>_<intra|inter>.json); not their data.
CONCEPTEDIT_ROWS = [
    {
        "label": "harbour town",
        "prompt": "The definition of harbour town is",
        "target_new_desc": "a settlement built around a river crossing",
        "phrase_prompt": "What does harbour town mean?",
        "instance_prompt": "Is Portsmouth a harbour town?",
        "locality_prompt": "The definition of glacier is",
        "locality_answer": "a slow river of ice",
    },
    {
        "label": "lute maker",
        "prompt": "The definition of lute maker is",
        "target_new_desc": "a person who repairs clocks",
        "phrase_prompt": ["What is a lute maker?", "Describe a lute maker."],
        "instance_prompt": ["Is Anna Ruiz a lute maker?"],
        "locality_prompt": [],
        "locality_answer": [],
        "concept_definition": "a craftsperson who builds stringed instruments",
    },
]


def test_world_cases_cover_the_117_definition_edits() -> None:
    cases = world_concept_cases(DATA_DIR, PromptFormat())
    assert len(cases) == 117
    assert {c.kind for c in cases} == {"sibling", "distant"}
    first = cases[0]
    assert first.request.subject in first.request.prompt and first.ground_truth
    assert first.paraphrases[0].startswith("Q: ") and first.locality
    assert {p.expected for p in first.instances} == {"yes", "no"}


def test_the_conceptedit_loader_reads_its_format(tmp_path: Path) -> None:
    path = tmp_path / "final_gpt2_inter.json"
    path.write_text(json.dumps(CONCEPTEDIT_ROWS), encoding="utf-8")
    cases = load_conceptedit(path, PromptFormat())
    assert [c.kind for c in cases] == ["inter", "inter"]
    assert cases[0].request.target_new == "a settlement built around a river crossing"
    assert cases[0].paraphrases == ("Q: What does harbour town mean?\nA:",)
    assert cases[0].locality[0].answer == "a slow river of ice" and cases[0].ground_truth is None
    assert len(cases[1].paraphrases) == 2 and cases[1].ground_truth.startswith("a craftsperson")  # type: ignore[union-attr]
    assert cases[1].instances[0].expected is None


@pytest.mark.parametrize(
    "row",
    [
        {"label": "x"},
        {"label": "glacier", "prompt": "A river is", "target_new_desc": "ice"},  # subject not in the prompt
        {"label": "g", "prompt": "g is", "target_new_desc": "ice", "locality_prompt": ["a"], "locality_answer": []},
    ],
)
def test_bad_conceptedit_rows_are_named(tmp_path: Path, row: dict[str, Any]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([row]), encoding="utf-8")
    with pytest.raises(WorldFormatError, match="index 0"):
        load_conceptedit(path)


def test_yes_no_and_instance_change() -> None:
    assert [yes_no(a) for a in ("Yes.", "no", "Paris", "")] == ["yes", "no", "other", "other"]
    change = instance_change(["yes", "no", "yes"], ["yes.", "yes", "Tokyo"])
    assert (change.flipped, change.probes) == (2, 3) and change.rate == pytest.approx(2 / 3)
    with pytest.raises(InvalidInputError):
        instance_change(["yes"], [])


def test_embedding_consistency_is_a_cosine() -> None:
    judge = EmbeddingConsistency(HashEmbedder())
    same, other, empty = judge.consistency(["a big town", "a big town", ""], ["a big town", "a red fish", "x"])
    assert same == pytest.approx(1.0, abs=1e-5) and other < same and empty == 0.0


def test_the_llm_judge_reads_yes_as_consistent() -> None:
    class Says:
        name, prompt_format = "fake", PromptFormat()

        def generate(self, prompts: Sequence[str], max_new_tokens: int = 24) -> list[Any]:
            return [type("G", (), {"text": "Yes" if "town" in p else "No"})() for p in prompts]

    judge = LLMConsistencyJudge(Says())
    assert judge.consistency(["a town", "a fish"], ["a city", "a dog"]) == [1.0, 0.0]


def test_world_rows_and_membership() -> None:
    rows = world_concept_rows(DATA_DIR)
    members = expected_members(rows)
    assert len(rows) == 75 and "Tokyo" in members["place"]
    edits = world_concept_edits(DATA_DIR)
    assert len(edits) == 117 and all(e.source in members for e in edits)


def test_method_names() -> None:
    assert editor_for("prompt") == ("PROMPT", "ike") and editor_for("ft-l") == ("FT-L", "ft-l")
    assert editor_for("AlphaEdit") == ("ALPHAEDIT", "alphaedit")


_FAST_ALPHA = {"layers": (0,), "v_num_grad_steps": 3, "n_context_templates": 1, "preserve_weight": 0.0}


@pytest.mark.parametrize(
    "method", ["FT-L", "ROME", "ALPHAEDIT", "GRACE"]
)  # PROMPT's demos overflow the 64-token context
def test_the_bench_scores_and_leaves_the_model_unchanged(tiny_model_dir: Path, tmp_path: Path, method: str) -> None:
    from tools.edit import load_edited

    lm = load_edited(tiny_model_dir)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    path = tmp_path / "final_gpt2_intra.json"  # short prompts: the tiny model's context is 64 tokens
    path.write_text(json.dumps(CONCEPTEDIT_ROWS * 2), encoding="utf-8")
    cases = load_conceptedit(path, lm.prompt_format)
    row = run_concept_bench(
        lm,
        method,
        cases,
        limit=2,
        select="all",
        judge=EmbeddingConsistency(HashEmbedder()),
        corpus=["The capital of France is Paris."] * 20,
        hparams={"layers": (0,)}
        if method == "ROME"
        else _FAST_ALPHA | {"preserve_prompts": (("A glacier is a slow river of ice.", "glacier"),)}
        if method == "ALPHAEDIT"
        else None,
    )
    assert list(row)[: len(ROW_KEYS)] == list(ROW_KEYS)
    assert row["method"] == method and row["n_edits"] == 2
    assert row["instance_probes"] == 2 and 0 <= row["instances_flipped"] <= row["instance_probes"]
    assert 0.0 <= row["instance_change"] <= 1.0 and row["concept_consistency"] is not None
    assert set(row["teacher_forced"]) == {"reliability", "generalization", "locality"}
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert np.isfinite(row["seconds_per_edit"])


def test_the_bench_refuses_to_preserve_a_locality_prompt(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tools.edit import load_edited

    lm = load_edited(tiny_model_dir)
    path = tmp_path / "final_gpt2_intra.json"
    path.write_text(json.dumps(CONCEPTEDIT_ROWS), encoding="utf-8")
    cases = load_conceptedit(path, lm.prompt_format)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    measured = (("The definition of glacier is", "glacier"),)  # the first row's locality prompt
    with pytest.raises(InvalidInputError, match="locality prompts"):
        run_concept_bench(lm, "ALPHAEDIT", cases, select="all", hparams=_FAST_ALPHA | {"preserve_prompts": measured})
    after = lm.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_dev_edits_are_not_test_edits_and_preserved_prompts_are_not_locality_prompts() -> None:
    from eval.concepts import dev_concept_cases, preserved_definition_prompts

    fmt = PromptFormat()
    test = world_concept_cases(DATA_DIR, fmt)
    dev = dev_concept_cases(DATA_DIR, fmt, 40)
    assert len(dev) == 40 and len({c.request.subject for c in dev}) > 20
    pairs = {(c.request.subject, c.request.target_new) for c in test}
    assert not pairs & {(c.request.subject, c.request.target_new) for c in dev}
    assert all(c.request.target_new != c.ground_truth for c in dev)
    locality = {p for c in [*test, *dev] for p, _ in c.locality}
    bare = {p.removeprefix("Q: ").split("\n")[0] for p in locality}
    preserved = preserved_definition_prompts(DATA_DIR, exclude=locality, prompt_format=fmt)
    assert len(preserved) == 4 * len({c.request.subject for c in test})
    assert not any(p.startswith(tuple(locality | bare)) for p, _ in preserved)  # no locality prompt
    assert all("How would you" not in p and "the term" not in p for p, _ in preserved)  # no held-out phrasing
    some = next(iter(sorted(locality)))
    assert len(preserved_definition_prompts(DATA_DIR, exclude=[some], prompt_format=fmt)) == len(preserved)
    cloze = preserved[0][0]  # "A <label> is" also starts that label's statement
    assert len(preserved_definition_prompts(DATA_DIR, exclude=[cloze], prompt_format=fmt)) == len(preserved) - 2
    assert len(preserved_definition_prompts(DATA_DIR)) == 3 * len({c.request.subject for c in test})


def test_question_form_adds_only_held_out_concepts_questions_never_a_locality_prompt() -> None:
    from eval.concepts import dev_concept_cases, preserved_definition_prompts

    fmt = PromptFormat()
    test = world_concept_cases(DATA_DIR, fmt)
    dev = dev_concept_cases(DATA_DIR, fmt, 40)
    locality = {p for c in [*test, *dev] for p, _ in c.locality}
    known = {c.request.subject for c in test}
    plain = preserved_definition_prompts(DATA_DIR, exclude=locality, prompt_format=fmt)
    both = preserved_definition_prompts(DATA_DIR, exclude=locality, prompt_format=fmt, question_form=True)
    assert both[: len(plain)] == plain  # off: the same prompts, in the same order
    extra = both[len(plain) :]
    assert len(extra) == 14 and all(s not in known for _, s in extra)  # the held-out concepts, one question each
    assert all(p == fmt.question(p.removeprefix("Q: ").split("\n")[0]) for p, _ in extra)  # the measured form
    assert not {p.strip() for p, _ in extra} & {p.strip() for p in locality}
    # exclude still applies to them, and without a prompt format there is no question to write
    first = extra[0][0]
    assert len(preserved_definition_prompts(DATA_DIR, [first], fmt, question_form=True)) == len(both) - 1
    assert len(preserved_definition_prompts(DATA_DIR, question_form=True)) == 3 * len(known)
