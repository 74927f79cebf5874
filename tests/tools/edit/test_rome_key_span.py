"""ROME's subject-span key (issue 22): ``key_span="subject"`` averages the key over all of the subject's tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.tools.edit._helpers import ROME_BLOCK0, ROME_FAST, load_models, rome_block0_update
from tools.edit import EditRequest, get_editor
from tools.edit._alphaedit import preserved_prompt_keys
from tools.edit._keys import subject_keys, subject_span_keys
from tools.errors import InvalidEditError

REQ = EditRequest("A native French speaker is", "native French speaker", "a person who writes music", "x", "concept")


@pytest.fixture(scope="module")
def lm() -> Any:
    return load_models()["gpt2-world"]


def test_span_keys_average_the_subject_tokens(lm: Any) -> None:
    ids = lm.tokenizer(REQ.prompt, add_special_tokens=False)["input_ids"]
    assert lm.tokenizer.decode(ids[1:-1]).strip() == REQ.subject and len(ids) >= 5  # "A", 3+ subject tokens, " is"
    keys = preserved_prompt_keys(lm, ROME_BLOCK0, [REQ.prompt]).float()[
        :, :-1
    ]  # (in, T) up to the subject's last token
    span = subject_span_keys(lm, ROME_BLOCK0, [REQ], ("{}",))[0, 0]
    last = subject_keys(lm, ROME_BLOCK0, [REQ], ("{}",))[0, 0]
    assert torch.allclose(span, keys[:, 1:].mean(dim=1), atol=1e-5)
    assert torch.allclose(last, keys[:, -1], atol=1e-5)


def test_subject_span_key_responds_at_every_subject_token_and_last_is_the_default(
    lm: Any, corpus: Any, cache_dir: Path
) -> None:
    plain = rome_block0_update(lm, corpus, cache_dir, REQ)
    last = rome_block0_update(lm, corpus, cache_dir, REQ, key_span="last")
    span = rome_block0_update(lm, corpus, cache_dir, REQ, key_span="subject")
    assert torch.equal(last.left, plain.left) and torch.equal(last.right, plain.right)  # "last": bit-identical
    keys = preserved_prompt_keys(lm, ROME_BLOCK0, [REQ.prompt]).float()[:, 1:-1]  # the subject's tokens (in, n)
    plain_resp = (plain.left.T.float() @ keys).squeeze(0)  # (4,)
    span_resp = (span.left.T.float() @ keys).squeeze(0)
    assert float(plain_resp[-1]) == pytest.approx(1.0, rel=0.05)  # the paper's key: 1 at the last token
    assert float(plain_resp[:-1].abs().max()) < 0.5  # and little at the others
    assert float(span_resp.mean()) == pytest.approx(1.0, rel=0.05)  # the span's: 1 on the mean key
    assert float(span_resp[:-1].min()) > 0.5  # every subject token answers


def test_rome_rejects_a_bad_key_span(lm: Any, corpus: Any, cache_dir: Path) -> None:
    for bad in ({"key_span": "first"}, {"key_span": "subject", "exact_objective": False}):
        with pytest.raises(InvalidEditError):
            get_editor("rome", corpus=corpus, cache_dir=cache_dir, **ROME_FAST, **bad).compute(lm, [REQ])
