"""Linking Chinese names (no word boundaries, traditional = simplified) and Chinese relation templates."""

from __future__ import annotations

import pytest

from kg import load_schema
from kg._linking import EntityLinker, normalize_mention
from kg._records import Entity
from kg._relation_linking import RelationLinker


def _entity(label: str) -> Entity:
    return Entity(f"https://factagent.dev/entity/{label}", label)


@pytest.fixture
def linker() -> EntityLinker:
    linker = EntityLinker()
    for label in ("法国", "法", "巴黎", "Acme"):
        linker.add(_entity(label))
    return linker


@pytest.mark.parametrize(
    "question",
    ["法国的首都是哪里？", "法國的首都是哪裡?", "请问🇫🇷法国的首都是哪里", "「法国」的首都？", "Acme和法国"],
)
def test_a_chinese_name_is_found_inside_a_sentence(linker: EntityLinker, question: str) -> None:
    labels = [m.link.entity.label for m in linker.find_mentions(question)]
    assert "法国" in labels and "法" not in labels  # the longest name wins, not its first character


def test_normalisation_folds_script_width_and_punctuation() -> None:
    assert normalize_mention("法國！") == normalize_mention("法国") == "法 国"
    assert normalize_mention("Ａｃｍｅ的CEO") == "acme 的 ceo"


def test_chinese_templates_link_exactly_and_stay_out_of_english_linking() -> None:
    schema = load_schema()
    assert "{}的首都是哪里？" in schema.relation("capital").zh_templates
    assert not any("的" in t for t in schema.relation("capital").templates)
    relations = RelationLinker(schema.templates(), exact_templates=schema.zh_templates())
    assert relations.link("法国的首都是哪里？", "法 国")[0].relation == "capital"
    assert relations.link("法國的首都是哪裡?", "法国")[0].relation == "capital"
    assert relations.link("阿里巴巴的总部在哪里？", "阿里巴巴")[0].relation == "company_hq"
    assert relations.link("What is the capital of France?", "France")[0].relation == "capital"
