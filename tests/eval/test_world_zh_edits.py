"""edit-bench on the world's Chinese slice: cases per CKnowEdit category, Chinese answer match and fluency."""

from __future__ import annotations

from pathlib import Path

from eval.editing import answer_matches, load_edit_dataset, text_entropy, world_zh_edit_cases
from eval.world import World
from tools.lm import PromptFormat

DATA = Path(__file__).parent / "data"
FMT = PromptFormat()


def test_world_zh_cases_carry_their_category(bundled_world: World) -> None:
    cases = world_zh_edit_cases(bundled_world, FMT)
    zh_edits = [e for e in bundled_world.slice_edits if e.slice == "zh"]
    assert len(cases) == len(zh_edits) > 0
    assert {c.category for c in cases} == {e.category for e in zh_edits}
    for case, edit in zip(cases, zh_edits, strict=True):
        assert case.request.subject in case.request.prompt and case.request.target_new == edit.new_answer
        assert case.ground_truth == edit.old_answer and case.relation == f"zh:{edit.category}"
        assert case.paraphrases == tuple(FMT.question(p) for p in edit.paraphrases)
        assert all(p.kind == "alias" and p.answer == edit.new_answer for p in case.portability)


def test_alias_portability_writes_the_subject_in_the_other_script(bundled_world: World) -> None:
    case = next(c for c in world_zh_edit_cases(bundled_world, FMT) if c.request.subject == "寥落古行宮")
    assert case.portability and "寥落古行宫" in case.portability[0].prompt  # traditional -> simplified


def test_cknowedit_rows_get_a_category_from_their_instruction() -> None:
    cases = load_edit_dataset(DATA / "cknowedit.json")
    assert [c.category for c in cases] == ["phonetic", "other"]


def test_chinese_answers_match_by_first_sentence_and_script() -> None:
    assert answer_matches("宮花寂寞紅。白頭宮女在", "宫花寂寞红")
    assert answer_matches("bèng bù", "beng4 bu4")
    assert not answer_matches("宫花寂寞", "宫花寂寞红")
    assert answer_matches("Paris is lovely", "Paris")  # English unchanged


def test_fluency_counts_each_chinese_character_as_a_word() -> None:
    assert text_entropy("床前明月光，疑是地上霜。举头望明月，低头思故乡。") > 1.0
    assert text_entropy("月月月月月月月月月月") < text_entropy("床前明月光疑是地上霜")
