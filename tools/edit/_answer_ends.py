"""Where an answer ends: the token the model puts after ``prompt + answer`` when it closes the answer there.

Used by the value fit (:mod:`tools.edit._values`, which re-exports :func:`answer_ends`) and by WISE's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tools.edit._keys import ModelAndTokenizer, _at_lookup, _encode
from tools.edit._request import target_text

__all__ = ["answer_ends"]


@torch.no_grad()
def answer_ends(lm: ModelAndTokenizer, prompts: Sequence[str], answers: Sequence[str | None]) -> list[int | None]:
    """The token the model puts after each ``prompt + answer`` when it ends the answer there, else ``None``.

    Used with the old answer: the edited model should close the new answer the way it closed the old one
    (``"... is named Digna Baltus."``, not ``"Digna Baltusdot"``). A token counts as an ending when it is the
    end-of-text token or its text starts with something other than a letter or digit (``"."``, ``","``,
    a newline); a word-continuing token gives ``None``.
    """
    out: list[int | None] = [None] * len(prompts)
    rows = [i for i, a in enumerate(answers) if a]
    if not rows:
        return out
    tok = lm.tokenizer
    batch = _encode(
        lm, [prompts[i] + target_text(prompts[i], answers[i] or "") for i in rows], [0] * len(rows), [None] * len(rows)
    )
    logits = lm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # (n, T, V)
    last = batch.attention_mask.sum(dim=1) - 1  # (n,)
    best = _at_lookup(logits, last).argmax(dim=-1).tolist()  # (n,)
    for i, token in zip(rows, best, strict=True):
        text = tok.decode([token]).lstrip(" ")
        if token == tok.eos_token_id or (text and not text[0].isalnum()):
            out[i] = int(token)
    return out
