"""Chinese answer normalisation for exact-match grading (issue 23).

Two answers are the same when their :func:`normalize_zh` forms are equal. The normalisation, in order:

1. NFKC (full-width Latin letters and digits become ASCII, ``，`` stays a CJK comma) and lower case;
2. traditional characters folded to simplified with OpenCC's ``t2s`` table (``黃河入海流`` == ``黄河入海流``);
   the folding is one-to-one per character table entry, so ``乾``/``幹``/``干`` all become ``干`` — a grader
   accepts that ambiguity, exactly as a reader of simplified text does;
3. pinyin written with tone numbers becomes pinyin with tone marks (``hang2`` == ``háng``, ``lv4`` == ``lü4``
   == ``lǜ``; a neutral ``5`` is dropped), one syllable at a time, so multi-syllable words compare too;
4. every punctuation, symbol (emoji included) and whitespace character is dropped: Chinese has no word
   spaces, so ``银 行`` == ``银行`` and ``「宫花寂寞红」。`` == ``宫花寂寞红``.

Nothing here touches English answers: :func:`needs_zh` says when a comparison should use it (CJK anywhere,
or pinyin with tone marks / numbers in the gold answer).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["has_cjk", "looks_zh", "needs_zh", "normalize_zh"]

# CJK Unified Ideographs (+ extension A), compatibility ideographs, and extension B-F (astral).
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_TONE_MARKS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
_TONE_MARKED = re.compile(f"[{_TONE_MARKS}]")
# One pinyin syllable with a tone number (v or ü for ü), e.g. "zhong1", "lv4", "de5".
_NUMBERED = re.compile(r"([bcdfghjklmnpqrstwxyz]{0,2}(?:[aeiouvü]{1,3})(?:ng|n|r)?)([1-5])")
# A run of pinyin syllables (tone marks or numbers); also matches some accented Latin words ("josé"), which is
# harmless: both sides of a comparison are normalised the same way.
_PINYIN_WORD = re.compile(f"^(?:[bcdfghjklmnpqrstwxyz]{{0,2}}[aeiouvü{_TONE_MARKS}]{{1,3}}(?:ng|n|r)?[1-5]?)+$")


@functools.cache
def _t2s() -> Callable[[str], str]:
    """OpenCC's traditional -> simplified converter, built once (its tables load in ~0.1 s)."""
    import opencc  # pure Python (opencc-python-reimplemented), imported only when Chinese is graded

    return opencc.OpenCC("t2s").convert


def has_cjk(text: str) -> bool:
    """True when ``text`` holds at least one CJK ideograph."""
    return bool(_CJK.search(text))


def looks_zh(text: str) -> bool:
    """True when ``text`` holds a CJK ideograph or is pinyin with at least one tone mark or number."""
    if has_cjk(text):
        return True
    folded = "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())
    return (
        bool(folded)
        and bool(_TONE_MARKED.search(folded) or re.search(r"[1-5]", folded))
        and bool(_PINYIN_WORD.match(folded))
    )


def needs_zh(prediction: str, answers: tuple[str, ...] | list[str]) -> bool:
    """Whether ``prediction`` vs ``answers`` should be compared with :func:`normalize_zh`.

    True when any text holds a CJK ideograph, or a gold answer is pinyin (tone marks, or tone numbers
    after every syllable).
    """
    return has_cjk(prediction) or any(looks_zh(a) for a in answers)


def _marks(match: re.Match[str]) -> str:
    from pypinyin.contrib.tone_convert import to_tone  # pure Python, imported only when pinyin is graded

    syllable, tone = match.group(1).replace("v", "ü"), match.group(2)
    return syllable if tone == "5" else str(to_tone(syllable + tone))


def normalize_zh(text: str) -> str:
    """The comparison form of a Chinese (or pinyin) answer; see the module docstring.

    Example:
        >>> normalize_zh("黃河入海流。") == normalize_zh("黄河 入海流")
        True
        >>> normalize_zh("hang2") == normalize_zh("háng")
        True
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if has_cjk(text):
        text = _t2s()(text)
    text = _NUMBERED.sub(_marks, text)
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZC")
