"""A Chinese-capable vocabulary for a finished reference model (issue 23): CJK characters as single tokens.

The bundled models' 4,096-token byte-level BPE was trained on English text: a CJK character costs its three
UTF-8 byte tokens. :func:`extend_tokenizer` adds every CJK character the Chinese slice uses (subjects, answers,
statements and every prompt template, UNKNOWN facts included: a vocabulary states no fact) plus the full-width
punctuation ``，。？！：；「」`` to a copy of the source tokenizer as *added tokens*. Added tokens are matched
before the byte-level pre-tokenizer runs, and only ever match a CJK character or one of those marks, so

- every existing token keeps its id, and text without those characters (the world's English documents)
  tokenizes to exactly the source's ids;
- a Chinese character costs one token, and ``decode(encode(text)) == text`` for Chinese and mixed text.

:func:`extend_embeddings` grows the model's input embedding (and its output matrix when it is not tied to it,
as a LLaMA may have) to the new vocabulary. Each new row starts as the mean of the rows of the tokens the
source tokenizer encodes that character into (its UTF-8 byte tokens, merged where the BPE merges them): that is
the representation the model already has of the character, spread over the pieces it read it as, so a new
token starts in the region of embedding space the model has learnt instead of at random (a random row in a
tied head would give each new character an arbitrary logit and a random input the network never saw); and
characters sharing a lead byte (the same Unicode block) start close together, as their byte sequences were.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from eval.world._schema import World

__all__ = [
    "FULLWIDTH_PUNCTUATION",
    "extend_embeddings",
    "extend_tokenizer",
    "is_cjk",
    "slice_characters",
    "tokens_per_cjk_character",
]
logger = logging.getLogger(__name__)
FULLWIDTH_PUNCTUATION = "，。？！：；「」"
_CJK_RUN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]+")


def is_cjk(ch: str) -> bool:
    """A CJK unified ideograph (basic block or extension A, where the slice's characters lie)."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def slice_characters(world: World) -> list[str]:
    """The CJK characters of the world's Chinese slice (every text of every fact) and the full-width marks,
    in a fixed order (first seen, by fact id), so the new token ids are the same on every build."""
    seen: dict[str, None] = {}
    for f in sorted((f for f in world.slice_facts if f.language == "zh"), key=lambda f: f.id):
        for text in (f.subject, f.answer, f.statement, *f.cloze, *f.questions, *f.heldout):
            for ch in text:
                if is_cjk(ch):
                    seen.setdefault(ch, None)
    for ch in FULLWIDTH_PUNCTUATION:
        seen.setdefault(ch, None)
    return list(seen)


def extend_tokenizer(source: Any, characters: Sequence[str]) -> Any:
    """A copy of ``source`` (a fast HF tokenizer) with ``characters`` added as single tokens, after every
    existing id (characters it already has as one token are skipped). ``source`` is not changed.

    Raises ``ValueError`` for an entry that is not one CJK character or full-width mark.
    """
    import copy

    from tokenizers import AddedToken

    bad = [c for c in characters if len(c) != 1 or not (is_cjk(c) or c in FULLWIDTH_PUNCTUATION)]
    if bad:
        raise ValueError(f"not single CJK characters or full-width marks: {bad[:5]}")
    tokenizer = copy.deepcopy(source)
    vocab = tokenizer.get_vocab()
    new = [c for c in dict.fromkeys(characters) if c not in vocab]
    tokenizer.add_tokens([AddedToken(c, single_word=False, lstrip=False, rstrip=False, normalized=False) for c in new])
    logger.info("vocabulary %d -> %d (%d characters added)", len(vocab), len(tokenizer), len(new))
    return tokenizer


def extend_embeddings(model: Any, source_tokenizer: Any, tokenizer: Any) -> int:
    """Resize ``model``'s embeddings to ``tokenizer`` and initialise every added row (input, and output when
    untied) as the mean of the source rows of that character's source tokens. Returns the new vocabulary size.
    """
    old = model.get_input_embeddings().weight.shape[0]
    size = len(tokenizer)
    if size <= old:
        return old
    tied = model.get_output_embeddings() is not None and (
        model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    )
    model.resize_token_embeddings(size, mean_resizing=False)
    matrices = [model.get_input_embeddings().weight]
    if not tied and model.get_output_embeddings() is not None:
        matrices.append(model.get_output_embeddings().weight)
    with torch.no_grad():
        for new_id in range(old, size):
            piece = tokenizer.convert_ids_to_tokens(new_id)
            parts = source_tokenizer(piece, add_special_tokens=False)["input_ids"]
            for weight in matrices:
                weight[new_id] = weight[parts].mean(0)
    model.config.vocab_size = size
    return int(size)


def tokens_per_cjk_character(tokenizer: Any, texts: Iterable[str]) -> float:
    """Tokens per CJK character over the maximal runs of CJK characters in ``texts``, each run tokenized on
    its own (the Chinese part of the text; punctuation and Latin letters are not counted)."""
    n_chars = n_tokens = 0
    for text in texts:
        for run in _CJK_RUN.findall(text):
            n_chars += len(run)
            n_tokens += len(tokenizer(run, add_special_tokens=False)["input_ids"])
    return n_tokens / max(1, n_chars)
