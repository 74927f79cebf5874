"""Answer normalisation for exact-match grading (SQuAD-style; Chinese and pinyin by ``eval._zh_normalize``)."""

from __future__ import annotations

import re
import string
import unicodedata

from eval._zh_normalize import looks_zh, needs_zh, normalize_zh

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, NFKC, drop punctuation and English articles, squeeze whitespace.

    Chinese text and pinyin (:func:`~eval._zh_normalize.looks_zh`) get :func:`~eval._zh_normalize.normalize_zh`
    instead: every punctuation and space dropped, traditional folded to simplified, tone numbers to marks.
    """
    if looks_zh(text):
        return normalize_zh(text)
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: tuple[str, ...] | list[str]) -> bool:
    """True when the normalised prediction equals one normalised gold answer.

    When the prediction or a gold answer is Chinese or pinyin (:func:`~eval._zh_normalize.needs_zh`) both
    sides are compared in their :func:`~eval._zh_normalize.normalize_zh` form.
    """
    if needs_zh(prediction, answers):
        pred = normalize_zh(prediction)
        return bool(pred) and any(pred == normalize_zh(a) for a in answers)
    pred = normalize_answer(prediction)
    return bool(pred) and any(pred == normalize_answer(a) for a in answers)
