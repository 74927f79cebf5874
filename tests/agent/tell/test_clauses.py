"""Non-restrictive relative clauses read apart from their sentence."""

from __future__ import annotations

import pytest

from agent.tell._clauses import relative_clauses


@pytest.mark.parametrize(
    ("sentence", "statements"),
    [
        (
            "ARM Holdings, which is headquartered in Bristol, makes chips.",
            ["ARM Holdings is headquartered in Bristol.", "ARM Holdings makes chips."],
        ),
        ("Jane Roe, who runs AOL, lives in Paris.", ["Jane Roe runs AOL.", "Jane Roe lives in Paris."]),
        ("AOL, which Jane Roe runs, is big.", ["Jane Roe runs AOL.", "AOL is big."]),
        ("AOL, whose CEO is Jane Roe, grew.", ["AOL's CEO is Jane Roe.", "AOL grew."]),
        (
            "Jane Roe runs Acme Corp, which is based in Paris.",
            ["Jane Roe runs Acme Corp.", "Acme Corp is based in Paris."],
        ),
        ("Ann met the Duke of York, who is tall.", ["Ann met the Duke of York.", "Duke of York is tall."]),
        ("Ann met him, who is tall.", ["Ann met him."]),
        (
            "Adam Clayton Powell, Jr., who married Hazel Scott, was a politician.",
            ["Adam Clayton Powell, Jr. married Hazel Scott.", "Adam Clayton Powell, Jr. was a politician."],
        ),
        ("Jane Roe, CEO of AOL, married John Doe.", ["Jane Roe is the CEO of AOL.", "Jane Roe married John Doe."]),
        ("Paris, the capital of France, is big.", ["Paris is the capital of France.", "Paris is big."]),
        (
            "Alicia Keys, whose dad is James R. Jordan, Sr., lives abroad.",
            ["Alicia Keys's dad is James R. Jordan, Sr.", "Alicia Keys lives abroad."],
        ),
    ],
)
def test_clauses(sentence: str, statements: list[str]) -> None:
    assert relative_clauses(sentence) == statements


@pytest.mark.parametrize(
    "sentence",
    [
        "Matson, Inc. is based in Honolulu.",
        "Who is Jane, who runs AOL?",
        "The CEO of AOL is Jane Roe.",
        "Ann, Bob and Cy met.",
        "Ann, Bob of Acme, and Cy met.",
        "Mary, Queen of Scots, married John Doe.",
    ],
)
def test_other_sentences_are_left_whole(sentence: str) -> None:
    assert relative_clauses(sentence) == [sentence]
