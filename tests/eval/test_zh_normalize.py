"""Chinese grading: character-level normalisation, traditional/simplified folding, pinyin tone equivalence."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval._normalize import exact_match, normalize_answer
from eval._zh_normalize import looks_zh, needs_zh, normalize_zh
from eval.audit import AuditDatasetError, is_abstention, load_dataset
from eval.editing import load_edit_dataset
from tools.errors import WorldFormatError


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("黃河入海流", "黄河入海流"),  # traditional vs simplified
        ("「宮花寂寞紅」。", "宫花寂寞红"),  # CJK brackets and full stop
        ("银 行", "银行"),  # no word spaces in Chinese
        ("巴黎！", "巴黎"),  # full-width punctuation
        ("巴黎 🇫🇷", "巴黎"),  # emoji
        ("hang2", "háng"),  # tone number vs tone mark
        ("Háng.", "háng"),
        ("lv4", "lǜ"),  # v for ü
        ("lü4", "lǜ"),
        ("zhong1guo2", "zhōngguó"),  # several syllables
        ("de5", "de"),  # neutral tone
        ("ＰＡＲＩＳ", "Paris"),  # full-width Latin (English path)
    ],
)
def test_equivalent_answers_match(prediction: str, gold: str) -> None:
    assert exact_match(prediction, [gold])


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [("xíng", "háng"), ("hang3", "háng"), ("黄河", "黄河入海流"), ("长安", "长城"), ("", "巴黎"), ("🙂", "巴黎")],
)
def test_different_answers_do_not_match(prediction: str, gold: str) -> None:
    assert not exact_match(prediction, [gold])


def test_english_answers_keep_english_rules() -> None:
    assert exact_match("the Eiffel Tower", ["Eiffel Tower"])
    assert normalize_answer("Route 66") == "route 66"
    assert not needs_zh("Paris", ["Paris"])


def test_detection_and_forms() -> None:
    assert looks_zh("长城") and looks_zh("háng") and looks_zh("hang2") and not looks_zh("Paris")
    assert normalize_zh("黃河入海流。") == "黄河入海流"
    assert normalize_answer("「宮花寂寞紅」。") == "宫花寂寞红"


def test_chinese_refusals_are_abstentions() -> None:
    assert is_abstention("我不知道。") and is_abstention("无法回答这个问题") and is_abstention("不清楚")
    assert not is_abstention("没有固定答案") and not is_abstention("一只也没有") and not is_abstention("巴黎")


def test_invalid_utf8_files_are_typed_errors(tmp_path: Path) -> None:
    bad = tmp_path / "cknowedit.json"
    bad.write_bytes(b'[{"prompt": "\xff\xfe", "target_new": "x"}]')
    with pytest.raises(WorldFormatError, match="cannot read"):
        load_edit_dataset(bad)
    rows = tmp_path / "questions.jsonl"
    rows.write_bytes(b'{"question": "\xe6\xb3\x95\xff", "answers": ["a"]}\n')
    with pytest.raises(AuditDatasetError):
        load_dataset(str(rows))
