"""A target longer than the model's context is refused with a typed error (issue 16, item 7), model untouched."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import REPO
from tests.tools.edit._helpers import same, state
from tools.edit import EditRequest, get_editor, journal_for
from tools.errors import InvalidEditError, InvalidInputError
from tools.lm._hf import HFLanguageModel


@pytest.mark.parametrize("method", ["grace", "rome"])
def test_a_5000_character_target_is_an_invalid_edit(method: str) -> None:
    lm = HFLanguageModel.load(REPO / "eval" / "world" / "models" / "gpt2-world", device="cpu")
    before = state(lm)
    request = EditRequest(prompt="The capital of France is", subject="France", target_new=" ".join(["Paris"] * 1000))
    with pytest.raises(InvalidEditError, match="this model reads at most") as err:
        get_editor(method).compute(lm, [request])
    assert isinstance(err.value, InvalidInputError)  # a client's mistake: 422 over HTTP
    assert same(before, state(lm)) and not journal_for(lm.model).entries
    with torch.no_grad():  # the model still works
        assert lm.generate(["The capital of France is"], max_new_tokens=2)[0].text
