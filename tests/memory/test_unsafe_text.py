"""NUL and bidi controls are refused, the same way, by every store of facts (issue 16, item 7)."""

from __future__ import annotations

import pytest

from kg._vocab import check_text as kg_check_text
from memory import Scope, VectorMemory, unsafe_character
from tools.errors import InvalidInputError

BAD = ["Acme\x00Corp", "Acme \u202eproC", "Acme \u2066Corp\u2069", "Acme\x1bCorp"]


@pytest.mark.parametrize("text", BAD)
def test_the_rule_names_the_character(text: str) -> None:
    found = unsafe_character(text)
    assert found is not None and "U+" in found


def test_ordinary_text_passes() -> None:
    assert unsafe_character("Line one\n\tLine two, café, 東京, مرحبا, emoji 🙂") is None


@pytest.mark.parametrize("text", BAD)
def test_the_vector_memory_and_the_graph_refuse_it(memory: VectorMemory, text: str) -> None:
    with pytest.raises(InvalidInputError, match="U\\+"):
        memory.add(f"The CEO of {text} is Jane Roe.", scope=Scope(agent_id="a"))
    with pytest.raises(InvalidInputError, match="subject contains"):
        kg_check_text(text, "subject")
    assert memory.count() == 0  # nothing was stored
